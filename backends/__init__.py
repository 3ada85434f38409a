"""Protocol adapters (Label Studio ML backend, CVAT). Depend on model and converters, never the reverse."""
