"""ROS-free core of refersplat_ros: pure Python + torch; nothing here imports rclpy."""
