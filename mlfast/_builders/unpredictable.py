"""scikit-learn estimators that cannot answer for new rows from their fitted
state, and why: mlfast refuses them saying so (the message of
``_not_served``), rather than as classes it does not serve yet."""

from __future__ import annotations

from typing import Dict, Optional

#: class name -> why its fitted state cannot predict (scikit-learn's own
#: classes of these names have neither predict nor transform)
CANNOT_PREDICT: Dict[str, str] = {
    "TSNE": "its embedding is optimised jointly over the training rows; it has no "
    "transform, and placing a new row needs a new fit",
    "MDS": "its embedding is optimised jointly over the training rows; it has no transform",
    "SpectralEmbedding": "its embedding is the eigenvectors of the training rows' graph; "
    "it has no transform",
    "DBSCAN": "labels_ are the training rows' clusters; it has no predict, and fit_predict "
    "clusters the rows it is given anew",
    "OPTICS": "labels_ are the training rows' clusters; it has no predict, and fit_predict "
    "clusters the rows it is given anew",
    "HDBSCAN": "labels_ are the training rows' clusters; it has no predict, and fit_predict "
    "clusters the rows it is given anew",
    "SpectralClustering": "its labels come from the eigenvectors of the training rows' "
    "affinity matrix; it has no predict",
    "AgglomerativeClustering": "its merge tree joins the training rows; it has no predict",
    "SpectralBiclustering": "it clusters the rows and columns of the training matrix; it has "
    "no predict",
    "SpectralCoclustering": "it clusters the rows and columns of the training matrix; it has "
    "no predict",
}


def reason(path: str) -> Optional[str]:
    """Why the scikit-learn class at ``path`` cannot predict, or None."""
    if not path.startswith("sklearn."):
        return None
    return CANNOT_PREDICT.get(path.rsplit(".", 1)[-1])
