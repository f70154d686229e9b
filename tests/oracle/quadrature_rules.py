"""Quadrature nodes and weights on [0, 1], from the rules' definitions (numpy
only, independently of igscope's quadrature.cpp)."""
import numpy as np


def rule(name, n):
    """(nodes, weights) of igscope's quadrature `name` with n steps."""
    k = np.arange(n, dtype=np.float64)
    if name == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return (x + 1) / 2, w / 2
    if name == "riemann_left":
        return k / n, np.full(n, 1.0 / n)
    if name == "riemann_right":
        return (k + 1) / n, np.full(n, 1.0 / n)
    if name == "riemann_middle":
        return (k + 0.5) / n, np.full(n, 1.0 / n)
    if name == "riemann_trapezoid":
        w = np.full(n + 1, 1.0 / n)
        w[0] = w[-1] = 0.5 / n
        return np.arange(n + 1) / n, w
    raise ValueError(name)
