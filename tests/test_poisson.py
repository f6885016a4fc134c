"""PoissonImage: targets, loss, sampling, metrics, pictures and config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from skimage import io

from dinf.errors import ConfigError
from dinf.jet import Jet
from dinf.pdes import Batch, PoissonImage, Problem
from dinf.pdes.poisson import fit_gain_offset

R = 32


class LookupField:
    """A parameter-free "field" returning ``a * img + b`` at pixel centres."""

    in_dim, out_dim = 2, 1

    def __init__(self, img: np.ndarray, a: float = 1.0, b: float = 0.0):
        self.img = torch.as_tensor(img, dtype=torch.float32)
        self.a, self.b = a, b

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = self.img.shape[0]
        ij = torch.round((x + 1) * (n - 1) / 2).long()
        return (self.a * self.img[ij[:, 0], ij[:, 1]] + self.b)[:, None]

    def jet(self, x, order=2):  # not needed by evaluate
        raise NotImplementedError


class NoiseField(LookupField):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return torch.rand(x.shape[0], 1, generator=g)


@pytest.fixture(scope="module")
def cam() -> PoissonImage:
    return PoissonImage(resolution=R)


def _smooth(n: int):
    """Grey g in [0,1] and the analytic derivatives of the normalised image 2g-1."""
    lin = np.linspace(-1, 1, n)
    x0, x1 = np.meshgrid(lin, lin, indexing="ij")
    g = 0.5 + 0.2 * np.sin(1.5 * x0) * np.cos(x1)
    d0 = 0.4 * 1.5 * np.cos(1.5 * x0) * np.cos(x1)
    d1 = -0.4 * np.sin(1.5 * x0) * np.sin(x1)
    lap = -0.4 * (1.5**2 + 1.0) * np.sin(1.5 * x0) * np.cos(x1)
    return g, d0, d1, lap


def test_targets_match_analytic_derivatives(tmp_path):
    n = 64
    g, d0, d1, lap = _smooth(n)
    path = tmp_path / "smooth.png"
    io.imsave(path, np.round(g * 65535).astype(np.uint16), check_contrast=False)
    inner = (slice(2, -2), slice(2, -2))  # reflect boundaries are not the analytic derivative

    p = PoissonImage(image=str(path), resolution=n, supervision="gradient")
    np.testing.assert_allclose(p.image.numpy(), 2 * g - 1, atol=1e-4)
    tg = p.target.numpy().reshape(n, n, 2)
    np.testing.assert_allclose(tg[..., 0][inner], d0[inner], atol=5e-3)
    np.testing.assert_allclose(tg[..., 1][inner], d1[inner], atol=5e-3)
    # Axis convention: coords[i*n+j] = (lin[i], lin[j]).
    assert torch.allclose(p.coords[n + 2], torch.tensor([-1 + 2 / (n - 1), -1 + 4 / (n - 1)]))

    q = PoissonImage(image=str(path), resolution=n, supervision="laplacian")
    tl = q.target.numpy().reshape(n, n)
    assert q.target.shape == (n * n, 1) and q.jet_order == 2 and p.jet_order == 1
    np.testing.assert_allclose(tl[inner], lap[inner], atol=0.1)


def test_evaluate_is_gain_offset_invariant(cam):
    m = cam.evaluate(LookupField(cam.image.numpy(), a=-3.0, b=7.0))
    assert m["psnr"] > 60 and m["ssim"] > 0.99
    bad = cam.evaluate(NoiseField(cam.image.numpy()))
    assert bad["psnr"] < 15 and bad["ssim"] < 0.5


def test_fit_gain_offset():
    gt = np.linspace(0, 1, 20).reshape(4, 5)
    rec, a, b = fit_gain_offset(2 * gt - 5, gt)
    assert a == pytest.approx(0.5) and b == pytest.approx(2.5)
    np.testing.assert_allclose(rec, gt, atol=1e-12)
    flat, a, b = fit_gain_offset(np.ones_like(gt), gt)
    assert a == 0.0 and np.allclose(flat, gt.mean())
    nan, _, _ = fit_gain_offset(np.full_like(gt, np.nan), gt)
    assert np.isnan(nan).all()


@pytest.mark.parametrize("supervision", ["gradient", "laplacian"])
def test_loss_zero_at_targets(supervision):
    p = PoissonImage(resolution=R, supervision=supervision)
    batch = p.sample(100, torch.Generator().manual_seed(1))
    t = batch.data["target"]
    n = t.shape[0]
    if supervision == "gradient":
        grad = t[:, None, :].clone()
        jet = Jet(torch.zeros(n, 1), grad, None)
        off = Jet(torch.zeros(n, 1), grad + 0.1, None)
    else:
        hess = torch.zeros(n, 1, 2, 2)
        hess[:, 0, 0, 0] = t[:, 0]  # trace carries the whole Laplacian
        jet = Jet(torch.zeros(n, 1), torch.zeros(n, 1, 2), hess)
        off = Jet(torch.zeros(n, 1), torch.zeros(n, 1, 2), hess + 0.1)
    out = p.loss(jet, batch)
    assert set(out) == {"loss", f"loss_{supervision}"}
    assert out["loss"].item() < 1e-10
    bad = p.loss(off, batch)["loss"].item()
    expected = 0.01 if supervision == "gradient" else 0.04  # offset on both diagonal entries
    assert bad == pytest.approx(expected, rel=1e-4)


def test_sample(cam):
    gen = torch.Generator().manual_seed(0)
    b = cam.sample(200, gen)
    assert isinstance(b, Batch) and b.x.shape == (200, 2) and b.data["target"].shape == (200, 2)
    assert b.x.abs().max() <= 1.0
    assert torch.unique(b.x, dim=0).shape[0] == 200
    b2 = cam.sample(200, gen)
    assert not torch.equal(b.x, b2.x)  # fresh draw each call
    full = cam.sample(10 * R * R, gen)
    assert full.x.shape[0] == R * R and torch.unique(full.x, dim=0).shape[0] == R * R
    # Each point's target is that pixel's target.
    idx = torch.round((full.x + 1) * (R - 1) / 2).long()
    assert torch.equal(full.data["target"], cam.target[idx[:, 0] * R + idx[:, 1]])


def test_module_field_device_and_metrics_follow_weights():
    p = PoissonImage(resolution=R).to("cpu")
    assert isinstance(p, Problem) and p.batch_size == 65536
    assert p.state_dict() == {}  # data buffers are not persisted in checkpoints
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    m1 = p.evaluate(net)
    with torch.no_grad():
        net[2].weight.mul_(-1.0)
        net[0].weight.add_(1.0)
    m2 = p.evaluate(net)
    assert m1 != m2


def test_config_errors(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ConfigError) as e:
        PoissonImage(image=str(missing), resolution=R)
    assert e.value.key == "image" and str(missing) in str(e.value)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png \x00\x01\x02" * 10)
    with pytest.raises(ConfigError) as e:
        PoissonImage(image=str(bad), resolution=R)
    assert e.value.key == "image" and str(bad) in str(e.value)
    with pytest.raises(ConfigError) as e:
        PoissonImage(resolution=R, supervision="foo")
    assert e.value.key == "supervision"
    with pytest.raises(ConfigError) as e:
        PoissonImage(resolution=4)
    assert e.value.key == "resolution"
    with pytest.raises(ConfigError) as e:
        PoissonImage(resolution=R, batch_size=0)
    assert e.value.key == "batch_size"


def test_pictures(cam, tmp_path):
    figs = cam.pictures(LookupField(cam.image.numpy(), a=0.5))
    fig = figs["poisson"]
    assert isinstance(fig, Figure) and len(fig.axes) >= 3
    assert "PSNR" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_rgb_file_is_greyed(tmp_path):
    rgb = np.zeros((40, 50, 4), dtype=np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 50).astype(np.uint8)[None, :]
    rgb[..., 3] = 128  # alpha must be ignored
    path = tmp_path / "rgb.png"
    io.imsave(path, rgb, check_contrast=False)
    p = PoissonImage(image=str(path), resolution=16)
    assert p.image.shape == (16, 16) and p.target.shape == (256, 2)
    img = p.image.numpy()
    # Red ramp along array axis 1 only: grey = 0.2125 * red, so a ramp in [-1, 2*0.2125-1].
    assert np.allclose(img[0], img[-1], atol=1e-6)
    assert img.min() == pytest.approx(-1.0, abs=0.02)
    assert img.max() == pytest.approx(2 * 0.2125 - 1, abs=0.02)
    assert np.all(np.diff(img[0]) > 0)
