"""Test helpers shared by the tests: scenes, fields, the ROS harness (``helpers.<module>``)."""
