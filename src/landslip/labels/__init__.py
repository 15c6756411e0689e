"""Landslide labels: polygons to label rasters on an image grid."""
