"""The GalleryDownload API: pydantic models that generate the CRD."""
