"""Camera-frame preprocessing (one crop and resize for every consumer) and Image <-> numpy conversion."""
