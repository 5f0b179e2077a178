"""RGB-D capture and Mask R-CNN segmentation (paper Sec. III-B.2)."""
