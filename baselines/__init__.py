"""OpenCV StereoBM / StereoSGBM behind the StereoKit matcher API."""
