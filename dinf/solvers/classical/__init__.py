"""Classical solvers beside the neural fields (finite elements), selected as models."""
