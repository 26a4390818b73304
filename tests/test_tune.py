"""asr tune-lm-weight's search: coordinate search over the alpha/beta grids, extended past an edge
that holds the best value (the tuned alpha of the default recipe sat on the old grid's top edge)."""
from asr.decode.tune import ALPHAS, BETAS, coordinate_search


def _objective(a0, b0):
    seen = []

    def f(a, b):
        seen.append((a, b))
        return ((a - a0) ** 2 + (b - b0) ** 2, 0.0)
    return f, seen


def test_interior_optimum_stays_on_the_grid():
    f, seen = _objective(0.7, 0.5)
    assert coordinate_search(f, ALPHAS, BETAS) == (0.7, 0.5)
    assert all(min(ALPHAS) <= a <= max(ALPHAS) and min(BETAS) <= b <= max(BETAS) for a, b in seen)


def test_edge_optimum_extends_the_grid():
    f, seen = _objective(2.1, -2.4)
    a, b = coordinate_search(f, ALPHAS, BETAS)
    assert abs(a - 2.1) < 1e-9  # 1.2 + 3 steps of 0.3
    assert b == -2.0            # -1 - 1 step of 1.0; -3.0 is farther from -2.4
    assert max(x for x, _ in seen) == 2.4  # one step past the optimum, then it stops


def test_extension_can_be_turned_off_and_alpha_stays_non_negative():
    f, _ = _objective(3.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=0) == (1.2, 1.0)
    f, seen = _objective(-5.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS) == (0.0, 1.0)
    assert min(x for x, _ in seen) == 0.0
    f, seen = _objective(100.0, 1.0)
    assert coordinate_search(f, ALPHAS, BETAS, max_extend=2) == (1.8, 1.0)
