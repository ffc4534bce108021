"""The napari dock widgets: they turn layers into arrays, call the core, and put results back into layers."""
