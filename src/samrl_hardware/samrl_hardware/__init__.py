"""The real cell: calibration on /tf_static, hand-eye calibration, and safe adapters from samrl's commands
to the Franka's Cartesian controller and the Rizon's MoveIt."""
