"""The data floor: readers, validation, panels and where the shipped data are."""
