"""CVAT integration: the Nuclio dashboard API CVAT's lambda manager calls, answered directly."""
