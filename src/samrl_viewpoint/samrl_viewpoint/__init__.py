"""Next-best-view: moving the camera arm along dQ/dP (paper Sec. III-D, Eqs. 7 and 10, Fig. 4).

    views      the view distribution: look-at parameters, per-task boxes, camera poses, reachable
               sampling and projection through the camera arm's IK
    view_step  P' = P + lambda dQ/dP, bounded per control step, projected, kept if Q does not fall
    heatmap    Fig. 4: Q over camera azimuth x elevation as a PNG heat map and JSON

No ROS and no simulator: the caller composes Q(I(P)) from the model's renderer and the networks.
"""
