"""Solar position (azimuth, elevation) for a place and a UTC time.

Uses the NOAA "general solar position" approximation (Spencer's Fourier series for the
declination and the equation of time), accurate to a few tenths of a degree, which is plenty
for shading a synthetic scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["SPOT7_ATSUMA_TIME", "SunPosition", "solar_position"]

# SPOT-7 crosses the descending node at 10:30 mean local solar time; at 141.9 E that is
# 10:30 - 141.9/15 h = 01:02 UTC. The paper's scene was taken on 4 October 2018.
SPOT7_ATSUMA_TIME = datetime(2018, 10, 4, 1, 2, tzinfo=UTC)


@dataclass(frozen=True)
class SunPosition:
    """Where the sun stands.

    Attributes:
        azimuth_deg: Azimuth in degrees clockwise from north (90 = east).
        elevation_deg: Elevation above the horizon in degrees.
    """

    azimuth_deg: float
    elevation_deg: float

    @property
    def vector(self) -> tuple[float, float, float]:
        """Unit vector towards the sun as (east, north, up)."""
        az = math.radians(self.azimuth_deg)
        el = math.radians(self.elevation_deg)
        return (math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el))


def solar_position(lat_deg: float, lon_deg: float, when: datetime) -> SunPosition:
    """Solar azimuth and elevation at a place and time.

    Args:
        lat_deg: Latitude in degrees (north positive).
        lon_deg: Longitude in degrees (east positive).
        when: A timezone-aware datetime (naive datetimes are taken as UTC).

    Returns:
        The sun's position (azimuth clockwise from north, elevation; degrees).
    """
    t = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    doy = t.timetuple().tm_yday
    hour = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                       - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
            - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
            - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    true_solar_min = hour * 60 + eqtime + 4 * lon_deg
    ha = math.radians(true_solar_min / 4 - 180)
    lat = math.radians(lat_deg)
    cos_zen = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    elev = 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))
    az_south = math.atan2(math.sin(ha), math.cos(ha) * math.sin(lat) - math.tan(decl)
                          * math.cos(lat))
    azimuth = (math.degrees(az_south) + 180) % 360
    return SunPosition(azimuth_deg=azimuth, elevation_deg=elev)
