"""gallery-operator: declarative gallery and media downloads on Kubernetes."""

API_GROUP = "gallery-operator.dev"
API_VERSION = "v1alpha1"
KIND = "GalleryDownload"
PLURAL = "gallerydownloads"
SUBSCRIPTION_KIND = "GallerySubscription"
SUBSCRIPTION_PLURAL = "gallerysubscriptions"

__version__ = "0.1.0"
# The published image of this version (the chart's image.repository and appVersion; docs/releasing.md).
IMAGE = f"ghcr.io/gallery-operator/gallery-operator:{__version__}"
