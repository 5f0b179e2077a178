"""samrl_description: what the robot, the scene and the tasks are, owned by no simulator.

    geometry   the one set of pose and rotation maths (numpy / scipy)
    objects    object specs (sizes, masses, frictions, colours) and their box layouts
    camera     the RGB-D camera's pinhole model (D435-like intrinsics)
    scene      rates, gravity and the fixed scene layout
    tasks      task names, each task's objects, Real2Sim target, grasp and nominal scene
    names      tf frame names and the drivers' topic names
    robot      the Panda hand and fingers (meshes and poses relative to the tool centre point)
    default_views          each task's default camera view (eye and look-at point)
    camera_arm_kinematics  the camera arm's URDF, its numpy forward and inverse kinematics

It imports no simulator and no other samrl package: the PyBullet world (samrl_sim) builds its
bodies from it, and perception, the model M and the policies read it on a real robot too.
"""
