"""Plots for people, drawn with matplotlib as the field draws them: the regression
scatter, the confusion matrix, a speed/accuracy trade-off and scores over time.

Every function returns the picture as a uint8 RGB array [H, W, 3], which TensorBoard
logs (`tf.summary.image`) and `save_png` writes. Figures are made with
`matplotlib.figure.Figure` on the Agg canvas, never with pyplot: pyplot keeps global
state and picks a GUI backend, which a library must not do to its host program.
"""

import numpy as np


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _pixels(figure):
    figure.tight_layout()
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def save_png(image, path):
    """Writes an RGB uint8 picture as a PNG; returns the path."""
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(np.asarray(image)[..., ::-1])):
        raise OSError(f"{path}: could not write the picture")
    return str(path)


def scatter_plot(y_true, y_pred, title="predicted vs true", unit=""):
    """Predicted against true values with the y = x line, and the RMSE in the title."""
    y_true, y_pred = np.ravel(y_true).astype(float), np.ravel(y_pred).astype(float)
    rmse = float(np.sqrt(np.mean((y_pred - y_true) ** 2))) if y_true.size else float("nan")
    lo = float(min(y_true.min(), y_pred.min())) if y_true.size else 0.0
    hi = float(max(y_true.max(), y_pred.max())) if y_true.size else 1.0
    pad = 0.05 * (hi - lo or 1.0)
    figure = _figure((5.0, 5.0))
    axes = figure.add_subplot()
    axes.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, label="y = x")
    axes.scatter(y_true, y_pred, s=8, alpha=0.6, color="tab:red", label="clips")
    axes.set_xlim(lo - pad, hi + pad)
    axes.set_ylim(lo - pad, hi + pad)
    axes.set_aspect("equal")
    suffix = f" ({unit})" if unit else ""
    axes.set_xlabel("true" + suffix)
    axes.set_ylabel("predicted" + suffix)
    axes.set_title(f"{title}\nRMSE {rmse:.4f}, {y_true.size} clips")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _pixels(figure)


def confusion_image(matrix, class_names=None, title="confusion matrix"):
    """Rows true, columns predicted, each row normalised to 1 (its counts written in
    the cells); darker is more."""
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    names = [str(c) for c in (class_names or range(n))]
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 2.5 + 0.45 * n)
    figure = _figure((side + 1.0, side))
    axes = figure.add_subplot()
    shown = axes.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label="fraction of the row")
    axes.set_xticks(range(n), names, rotation=45, ha="right")
    axes.set_yticks(range(n), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axes.set_title(f"{title} (accuracy {accuracy:.3f})")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if norm[i, j] > 0.5 else "black")
    return _pixels(figure)


def tradeoff_plot(series, xlabel, ylabel, title, labels=None):
    """One line per method through its points: `series` maps a method to (x, y) lists
    (e.g. frames/s and mIoU for key intervals 1..20); `labels` maps a method to a text
    per point (e.g. "k=10")."""
    figure = _figure((7.0, 5.0))
    axes = figure.add_subplot()
    for method, (x, y) in series.items():
        axes.plot(x, y, marker="o", label=method)
        for xi, yi, text in zip(x, y, (labels or {}).get(method, ())):
            axes.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 5),
                          fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _pixels(figure)


def scores_over_time(times, scores, class_names, title="class scores over time", top=5,
                     segments=()):
    """Each of the `top` classes with the highest peak score as a line of score against
    time (s); `segments` (start, end, class index) are shaded under the lines."""
    scores = np.asarray(scores, float)
    order = np.argsort(-scores.max(axis=0))[:top] if scores.size else []
    figure = _figure((9.0, 3.5))
    axes = figure.add_subplot()
    colors = {c: f"C{i}" for i, c in enumerate(order)}
    for c in order:
        axes.plot(times, scores[:, c], color=colors[c], label=str(class_names[c]))
    for start, end, c in segments:
        axes.axvspan(start, end, color=colors.get(c, "0.8"), alpha=0.15, lw=0)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("score")
    axes.set_ylim(0.0, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len(order):
        axes.legend(loc="upper right", fontsize=8)
    return _pixels(figure)
