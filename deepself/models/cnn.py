"""Convolutional networks on feature maps or images, with every layer's output size computed up front."""

from __future__ import annotations

from torch import nn

from deepself.errors import DeepselfError
from deepself.models.registry import ACTIVATIONS, per_layer, register_model


def conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    """Length of a convolution's output along one axis (no dilation)."""
    return (size + 2 * padding - kernel) // stride + 1


@register_model("cnn2d", inputs=("2d",))
class CNN2d(nn.Module):
    """Blocks of Conv2d, optional batch norm, activation and max-pooling, then a classifier.

    Each block's output size (frequency x time) is computed when the model is built; a geometry
    that shrinks to nothing raises before any training, naming the layer.
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, channels=(16, 32), kernel=3, stride=1,
                 padding=1, pool=2, batch_norm=True, activation="relu", dropout=0.0, global_pool=True,
                 hidden=()):
        super().__init__()
        n = len(channels)
        kernels, strides = per_layer(kernel, n, "kernel"), per_layer(stride, n, "stride")
        paddings, pools = per_layer(padding, n, "padding"), per_layer(pool, n, "pool")
        blocks, size, c_in = [], (n_freqs, n_times), n_chans
        self.output_sizes = []
        for i, (c_out, k, s, p, q) in enumerate(zip(channels, kernels, strides, paddings, pools)):
            size = tuple(conv_output(d, k, s, p) for d in size)
            if min(size) < 1:
                raise DeepselfError(f"model args: conv layer {i + 1} (kernel {k}, stride {s}, padding {p}) "
                                    f"shrinks the map to {size[0]} x {size[1]}")
            blocks += [nn.Conv2d(c_in, c_out, k, s, p, bias=not batch_norm)]
            blocks += [nn.BatchNorm2d(c_out)] if batch_norm else []
            blocks += [ACTIVATIONS[activation]()]
            if q > 1:
                size = tuple(d // q for d in size)
                if min(size) < 1:
                    raise DeepselfError(f"model args: pooling {q} after conv layer {i + 1} "
                                        f"shrinks the map to {size[0]} x {size[1]}")
                blocks.append(nn.MaxPool2d(q))
            self.output_sizes.append((c_out, *size))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        flat = c_in if global_pool else c_in * size[0] * size[1]
        head = [nn.AdaptiveAvgPool2d(1)] if global_pool else []
        head += [nn.Flatten(), nn.Dropout(dropout)]
        for width in hidden:
            head += [nn.Linear(flat, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            flat = width
        head.append(nn.Linear(flat, n_outputs))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))
