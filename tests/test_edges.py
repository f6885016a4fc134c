"""Edge handling: ghost-node padding represents smooth functions better than clamping."""
from experiments.edge_fit import fit_error, shifted, smooth


def test_pad_fits_smooth_functions_better_than_clamp():
    for target in (smooth, shifted):
        pad = fit_error("pad", 16, 1.0, 3, target, samples=48)
        clamp = fit_error("clamp", 16, 1.0, 3, target, samples=48)
        assert pad < clamp / 5, (target.__name__, pad, clamp)
