"""Training: data, augmentation and the engine (a generator of progress events)."""
