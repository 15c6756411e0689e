"""A SPOT-7-like sensor: illumination, point-spread function, band integration, noise, DNs.

* At-sensor signal per band: surface reflectance times (direct sun on the slope + diffuse
  sky light weighted by the sky-view factor), plus atmospheric path radiance (stronger in
  blue, which keeps shadows bluish and slightly bright, as in real images).
* MS (6 m): the 1.5 m signal blurred by a Gaussian PSF (sigma 1.6 PAN pixels, an MTF of
  about 0.3 at the MS Nyquist frequency) and averaged over 4 x 4 pixels (detector footprint).
* PAN (1.5 m): a weighted sum of blue, green and red (SPOT-7's PAN spans 450-745 nm), blurred
  by a narrower PSF (sigma 0.6 pixel).
* Noise: Gaussian with a signal-dependent (shot) variance, SNR about 100 for mid-range DNs;
  12-bit digital numbers (0..4095) stored as uint16.
* Another sensor response (another satellite or calibration, for domain-shift studies):
  :meth:`SensorModel.with_response` scales the gains and the noise and adds DN offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["SensorModel"]

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]


@dataclass(frozen=True)
class SensorModel:
    """Radiometry of the simulated sensor.

    Attributes:
        diffuse: Share of diffuse sky light in the total irradiance on flat ground, per band
            (blue, green, red, NIR).
        path: Path radiance per band, in reflectance units.
        gain: Digital numbers per reflectance unit, per band.
        pan_weights: Weights of blue, green and red in the PAN band.
        pan_gain: Digital numbers per reflectance unit for PAN.
        ms_psf_sigma: Gaussian PSF sigma of the MS bands in PAN pixels.
        pan_psf_sigma: Gaussian PSF sigma of PAN in PAN pixels.
        read_noise: Standard deviation of signal-independent noise, DN.
        shot_noise: Variance per DN of signal-dependent noise.
        ratio: MS pixel size / PAN pixel size.
        offset: DN offset per MS band (blue, green, red, NIR), added before the noise; PAN
            gets the PAN-weighted offset of blue, green and red.
    """

    diffuse: tuple[float, float, float, float] = (0.30, 0.20, 0.15, 0.10)
    path: tuple[float, float, float, float] = (0.045, 0.028, 0.018, 0.012)
    gain: tuple[float, float, float, float] = (7000.0, 6500.0, 6500.0, 5200.0)
    pan_weights: tuple[float, float, float] = (0.25, 0.35, 0.40)
    pan_gain: float = 7500.0
    ms_psf_sigma: float = 1.6
    pan_psf_sigma: float = 0.6
    read_noise: float = 2.0
    shot_noise: float = 0.08
    ratio: int = 4
    offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def with_response(self, gain: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
                      offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
                      noise: float = 1.0) -> SensorModel:
        """This sensor with another response: gains times ``gain`` (per MS band; PAN by the
        PAN-weighted blue/green/red factor), DN offsets ``offset`` added, noise standard
        deviation times ``noise``."""
        from dataclasses import replace

        w = self.pan_weights
        pan_scale = (w[0] * gain[0] + w[1] * gain[1] + w[2] * gain[2]) / sum(w)
        g = tuple(float(a * b) for a, b in zip(self.gain, gain, strict=True))
        o = tuple(float(a + b) for a, b in zip(self.offset, offset, strict=True))
        return replace(self, gain=(g[0], g[1], g[2], g[3]), offset=(o[0], o[1], o[2], o[3]),
                       pan_gain=self.pan_gain * pan_scale, read_noise=self.read_noise * noise,
                       shot_noise=self.shot_noise * noise**2)

    @property
    def pan_offset(self) -> float:
        """DN offset of PAN: the PAN-weighted offset of blue, green and red."""
        w = self.pan_weights
        return (w[0] * self.offset[0] + w[1] * self.offset[1] + w[2] * self.offset[2]) / sum(w)

    def at_sensor(self, refl: F32, direct: F32, sin_el: float, sky_view: F32) -> F32:
        """At-sensor signal (reflectance units) from surface reflectance and illumination.

        Args:
            refl: Surface reflectance (4, H, W).
            direct: Cosine of the incidence angle times the visible share of the sun, >= 0,
                (H, W).
            sin_el: Sine of the sun's elevation (the cosine of incidence on flat ground).
            sky_view: Sky-view factor (H, W), 1 on flat ground.

        Returns:
            float32 (4, H, W).
        """
        out = np.empty_like(refl)
        rel_direct = direct / np.float32(sin_el)
        for b in range(refl.shape[0]):
            f = np.float32(self.diffuse[b])
            irr = (1 - f) * rel_direct + f * sky_view
            out[b] = refl[b] * irr + np.float32(self.path[b])
        return out

    def pan_signal(self, signal: F32) -> F32:
        """PAN signal (H, W) as the weighted sum of the blue, green and red signals (4, H, W)."""
        w = self.pan_weights
        return np.asarray(w[0] * signal[0] + w[1] * signal[1] + w[2] * signal[2], np.float32)

    def ms_from_signal(self, signal: F32) -> F32:
        """Blur by the MS PSF and average over ``ratio`` x ``ratio`` pixels.

        Args:
            signal: (4, H, W) with H and W multiples of ``ratio`` (with a halo that the
                caller crops afterwards).

        Returns:
            (4, H / ratio, W / ratio) float32.
        """
        from scipy.ndimage import gaussian_filter

        c, h, w = signal.shape
        r = self.ratio
        out = np.empty((c, h // r, w // r), dtype=np.float32)
        for b in range(c):
            blurred = gaussian_filter(signal[b], self.ms_psf_sigma, mode="nearest")
            out[b] = blurred.reshape(h // r, r, w // r, r).mean(axis=(1, 3))
        return out

    def pan_from_signal(self, signal: F32) -> F32:
        """PAN blurred by its PSF: (4, H, W) signal -> (H, W)."""
        from scipy.ndimage import gaussian_filter

        return np.asarray(gaussian_filter(self.pan_signal(signal), self.pan_psf_sigma,
                                          mode="nearest"), np.float32)

    def to_dn(self, signal: F32, gain: float, rng: np.random.Generator,
              offset: float = 0.0) -> U16:
        """Digital numbers with sensor noise: 12-bit values (0..4095) as uint16."""
        dn = signal * np.float32(gain)
        if offset:
            dn = dn + np.float32(offset)
        sd = np.sqrt(np.float32(self.read_noise**2) + np.float32(self.shot_noise)
                     * np.maximum(dn, 0))
        dn = dn + sd * rng.standard_normal(dn.shape, dtype=np.float32)
        return np.asarray(np.clip(np.rint(dn), 0, 4095), dtype=np.uint16)
