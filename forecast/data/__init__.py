"""The data floor: readers, validation, panels, shipped data and the simulator."""
