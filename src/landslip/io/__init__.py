"""Input and output at the edges: rasters (GeoTIFF via rasterio) and files written atomically."""
