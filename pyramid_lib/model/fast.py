"""Speed-ups that leave what the network computes unchanged (see benchmarks/README.md).

A model a student builds (`engine.build.build`) shows the paper's layers; training applies
`optimize` and `adam` where it runs (`engine.build.training_optimizer`), because there they pay:
on a 2-core AVX2 CPU a 28x28 training step runs about twice as fast with them, while bf16
autocast, without AVX-512-BF16 or AMX, runs 4 to 20 times slower (benchmarks/README.md):

* Exact-tap convolutions.  At 28x28 the ResNet18 map is 1x1 in layer4 and 2x2 in layer3.  A 3x3
  conv with padding 1 on a 1x1 map only ever meets real input with its centre tap (the others only
  see zero padding); the stride-2 conv from 2x2 to 1x1 only uses taps [1:, 1:].  oneDNN takes a
  slow path for those shapes (most of a 28x28 training step went to their backward pass), so each
  such conv is replaced by `TapConv2d`: the same nn.Parameter (state_dict keys and pretrained
  weights unchanged), sliced to the taps that meet real input, run as a matrix product when the
  sliced kernel covers the whole input (one output pixel) and as a smaller conv otherwise.  The
  gradient of the unused taps is exactly zero, as in the plain conv.  The map size each conv sees
  is recorded once from a probe forward pass; an input of any other size runs the plain conv.
* `adam(...)`: torch.optim.Adam with the fused CPU/GPU kernel (one pass over the parameters
  instead of ~10 foreach passes); same update rule, rounding differs in the last bit.

Nothing here changes the method.  Variants that would (e.g. a frozen backbone with cached
features) are not in this module and must never become a silent default."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TapConv2d", "MatrixConv2d", "used_taps", "optimize", "optimize_loss", "plain", "adam", "rewritten"]


def used_taps(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> tuple[int, int] | None:
    """(first, last) kernel tap along one axis that ever meets real input of side `size`.

    Tap t of output o reads input position o * stride - padding + t * dilation; a tap that never
    lands inside [0, size) only ever multiplies zero padding.  None when the output is empty.
    """
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        return None
    hit = [t for t in range(kernel)
           if any(0 <= o * stride - padding + t * dilation < size for o in range(out))]
    return (hit[0], hit[-1]) if hit else None


class _KnownSizeConv(nn.Module):
    """Shared by the rewrites: holds the original conv's own `weight` and `bias` Parameters (so
    state_dict keys, loading and the optimiser see no difference) and its settings; runs the plain
    conv for any input side other than the one it was built for."""

    def __init__(self, conv: nn.Conv2d, input_size: int):
        super().__init__()
        self.weight = conv.weight  # the same Parameter object
        self.bias = conv.bias
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.input_size = input_size

    def plain_conv(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def to_conv(self) -> nn.Conv2d:
        """The plain nn.Conv2d sharing the same Parameters."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.groups, bias=self.bias is not None,
                         device=self.weight.device, dtype=self.weight.dtype)
        conv.weight = self.weight
        if self.bias is not None:
            conv.bias = self.bias
        return conv


class TapConv2d(_KnownSizeConv):
    """A Conv2d for a known square input side that computes only the taps meeting real input.

    Holds the original conv's own `weight` (and `bias`) Parameter, so state_dict keys, loading
    and the optimiser see no difference.  For the known input side the output equals the plain
    conv's up to float summation order; for any other side the plain conv runs.
    """

    def __init__(self, conv: nn.Conv2d, input_size: int):
        if not rewritable(conv, input_size):
            raise ValueError(f"{conv} on a {input_size}x{input_size} map uses every tap; nothing to rewrite")
        super().__init__(conv, input_size)
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        first, last = used_taps(input_size, k, s, p)
        self.taps = (first, last + 1)
        self.tap_padding = p - first  # the sliced kernel starts `first` taps later
        kt = last + 1 - first
        self.out_size = (input_size + 2 * p - k) // s + 1
        # one output pixel whose (sliced) window is exactly the whole unpadded input: a matmul
        self.as_matmul = self.out_size == 1 and self.tap_padding == 0 and kt == input_size

    def extra_repr(self) -> str:
        a, b = self.taps
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, input_size={self.input_size}, taps=[{a}:{b}, {a}:{b}], "
                f"{'matmul' if self.as_matmul else 'conv'}")

    def forward(self, x):
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            return self.plain_conv(x)
        a, b = self.taps
        w = self.weight[:, :, a:b, a:b]
        if self.as_matmul:
            y = F.linear(x.reshape(x.shape[0], -1), w.reshape(self.out_channels, -1), self.bias)
            return y.view(x.shape[0], self.out_channels, 1, 1)
        return F.conv2d(x, w, self.bias, self.stride, self.tap_padding, 1, self.groups)


def tap_matrix(size: int, kernel: int, stride: int, padding: int, transposed: bool = False) -> torch.Tensor:
    """0/1 matrix P (k*k x m*m*n*n) that spreads the k*k taps of one (out, in) channel pair over
    the dense (m*m x n*n) map from an n x n input to an m x m output.

    Conv2d: output y reads input u with tap u - y * stride + padding (per axis).
    ConvTranspose2d: input u writes output y with tap y + padding - u * stride.
    Pairs whose tap falls outside the kernel (zero padding, or no overlap) get no tap: a zero.
    """
    n, k, s, p = size, kernel, stride, padding
    m = (n - 1) * s - 2 * p + k if transposed else (n + 2 * p - k) // s + 1
    P = torch.zeros(k * k, m * m * n * n)
    for i in range(m):
        for j in range(m):
            for u in range(n):
                for v in range(n):
                    a, b = ((i + p - u * s, j + p - v * s) if transposed else (u - i * s + p, v - j * s + p))
                    if 0 <= a < k and 0 <= b < k:
                        P[a * k + b, ((i * m + j) * n + u) * n + v] = 1.0
    return P


class MatrixConv2d(_KnownSizeConv):
    """A Conv2d on a tiny known square map run as one matrix product.

    On an n x n input the conv is a linear map from C*n*n to O*m*m numbers; its matrix holds the
    conv's taps (one per input/output pixel pair, zero where the tap would meet padding), built
    each step from the same `weight` Parameter through a fixed 0/1 tap matrix, so autograd gives
    the weight exactly the conv's gradient (the sum over the pixel pairs that use each tap).
    Used where that matrix has fewer entries per output than the kernel (n*n < k*k: a 3x3 conv
    on a 2x2 map), where oneDNN's direct conv is slow.  Other input sides run the plain conv.
    """

    def __init__(self, conv: nn.Conv2d, input_size: int):
        if not matrix_rewritable(conv, input_size):
            raise ValueError(f"{conv} on a {input_size}x{input_size} map is not worth a dense matrix")
        super().__init__(conv, input_size)
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        self.out_size = (input_size + 2 * p - k) // s + 1
        self.register_buffer("taps", tap_matrix(input_size, k, s, p).to(conv.weight), persistent=False)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, input_size={self.input_size}, matrix")

    def forward(self, x):
        n, m = self.input_size, self.out_size
        if x.shape[-1] != n or x.shape[-2] != n:
            return self.plain_conv(x)
        out_c, in_c = self.out_channels, self.in_channels
        k2 = self.kernel_size[0] * self.kernel_size[1]
        M = (self.weight.reshape(out_c * in_c, k2) @ self.taps).view(out_c, in_c, m * m, n * n)
        M = M.transpose(1, 2).reshape(out_c * m * m, in_c * n * n)
        b = None if self.bias is None else self.bias.repeat_interleave(m * m)
        return F.linear(x.reshape(x.shape[0], -1), M, b).view(x.shape[0], out_c, m, m)


def matrix_rewritable(conv: nn.Module, input_size: int) -> bool:
    """A plain square conv (as `rewritable` asks) on an n x n map with n*n < k*k."""
    if not _plain_square(conv):
        return False
    k = conv.kernel_size[0]
    return input_size * input_size < k * k and (input_size + 2 * conv.padding[0] - k) // conv.stride[0] + 1 >= 1


def _plain_square(conv: nn.Module) -> bool:
    if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or conv.groups != 1:
        return False
    if isinstance(conv.padding, str) or conv.dilation != (1, 1):
        return False
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    return kh == kw and sh == sw and ph == pw


def rewritable(conv: nn.Module, input_size: int) -> bool:
    """A plain square zero-padded Conv2d, no dilation or groups, that skips taps on this input side."""
    if not _plain_square(conv):
        return False
    kh, sh, ph = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    taps = used_taps(input_size, kh, sh, ph)
    return taps is not None and taps != (0, kh - 1) and ph - taps[0] >= 0


@torch.no_grad()
def conv_input_sizes(model: nn.Module, input_size: int) -> dict[str, int]:
    """The square input side each nn.Conv2d of `model` sees for an input_size x input_size image,
    from one probe forward pass (eval mode, batch 1: no running statistics change)."""
    sizes, hooks = {}, []
    for name, m in model.named_modules():
        if type(m) is nn.Conv2d:  # TapConv2d / MatrixConv2d (already rewritten) are skipped
            def hook(mod, inp, name=name):
                h, w = inp[0].shape[-2:]
                sizes[name] = int(h) if h == w else -1
            hooks.append(m.register_forward_pre_hook(hook))
    was_training = model.training
    p = next(model.parameters())
    try:
        model.eval()
        model(torch.zeros(1, 3, input_size, input_size, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sizes


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def optimize(model: nn.Module, input_size: int | None = None, matrix: bool = True,
             channels_last: bool = True, convs: bool = True) -> nn.Module:
    """The library's default speed-ups, in place; returns the model.

    With `convs`, every conv that skips taps at this input size becomes a `TapConv2d` and, with
    `matrix`, every 3x3 conv on a map smaller than 3x3 that still uses all taps becomes a
    `MatrixConv2d`; with `channels_last`, 4-d weights are stored NHWC (oneDNN's faster layout on
    CPU; values unchanged; a printed model does not show it).  `input_size` defaults to
    `model.config.input_size`.  Idempotent; undo with `plain(model)`.  Outputs and gradients
    equal the plain model's up to float rounding (tests/model/test_fast.py); state_dict keys and
    values are unchanged.
    """
    size = model.config.input_size if input_size is None else input_size
    sizes = conv_input_sizes(model, size) if convs else {}
    for name, s in sizes.items():
        conv = model.get_submodule(name)
        if s > 0 and rewritable(conv, s):
            _set(model, name, TapConv2d(conv, s))
        elif s > 0 and matrix and matrix_rewritable(conv, s):
            _set(model, name, MatrixConv2d(conv, s))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def optimize_loss(loss: nn.Module) -> nn.Module:
    """The loss's frozen VGG11 layers stored channels-last, in place (values unchanged): with
    channels-last inputs (`data.to_input`) F(x) of 500 28x28 images took 0.21 s instead of 0.38 s on 2 CPU cores."""
    return loss.to(memory_format=torch.channels_last)


def plain(model: nn.Module) -> nn.Module:
    """Undo `optimize`, in place: every rewritten conv back to an nn.Conv2d (same Parameters)."""
    for name, m in list(model.named_modules()):
        if isinstance(m, _KnownSizeConv):
            _set(model, name, m.to_conv())
    return model


def rewritten(model: nn.Module) -> list[str]:
    """Names of the convs `optimize` rewrote."""
    return [name for name, m in model.named_modules() if isinstance(m, _KnownSizeConv)]


def adam(params, lr: float, weight_decay: float = 0.0, **kw) -> torch.optim.Adam:
    """torch.optim.Adam, fused where the parameters' device supports it (CPU and CUDA)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True, **kw)
    except (RuntimeError, ValueError, TypeError):  # an older torch or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kw)
