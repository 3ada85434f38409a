"""The Label Studio ML backend: the protocol Label Studio 1.23 speaks to a model server."""
