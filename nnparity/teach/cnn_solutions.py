"""The CNN exercises' solutions (the task's functions, correct) and their planted bugs: one
line of a solution changed, each named by ``nnparity verify``'s diagnosis
(:data:`nnparity.teach.cnn_exercises.EXERCISES`). Shown on the teaching page in a fold; the stubs
that ``teach --exercises`` writes never hold them."""

from __future__ import annotations

CONV = '''def conv_forward(x, W, b, stride, padding):
    k = W.shape[0]
    top, bottom = pads(x.shape[1], k, stride, padding)
    left, right = pads(x.shape[2], k, stride, padding)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho, wo = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    z = np.empty((x.shape[0], ho, wo, W.shape[3]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            z[:, i, j, :] = np.tensordot(patch, W, axes=3) + b
    return z


def conv_backward(d, x, W, stride, padding):
    k = W.shape[0]
    top, bottom = pads(x.shape[1], k, stride, padding)
    left, right = pads(x.shape[2], k, stride, padding)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for i in range(d.shape[1]):
        for j in range(d.shape[2]):
            rows, cols = slice(i * stride, i * stride + k), slice(j * stride, j * stride + k)
            dW += np.tensordot(xp[:, rows, cols, :], d[:, i, j, :], axes=(0, 0))
            dxp[:, rows, cols, :] += np.tensordot(d[:, i, j, :], W, axes=(1, 3))
    dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dW, d.sum(axis=(0, 1, 2))
'''

MAXPOOL = '''def maxpool_forward(a, size, padding):
    n, height, width, c = a.shape
    top, bottom = pads(height, size, size, padding)
    left, right = pads(width, size, size, padding)
    ap = np.pad(a, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    ho, wo = ap.shape[1] // size, ap.shape[2] // size
    out, first = np.empty((n, ho, wo, c)), np.empty((n, ho, wo, c), dtype=int)
    for i in range(ho):
        for j in range(wo):
            window = ap[:, i * size:(i + 1) * size, j * size:(j + 1) * size, :]
            window = window.reshape(n, size * size, c)
            first[:, i, j, :] = window.argmax(axis=1)
            out[:, i, j, :] = window.max(axis=1)
    return out, (a.shape, ap.shape, top, left, size, first)


def maxpool_backward(dout, cache):
    shape, padded, top, left, size, first = cache
    n, ho, wo, c = dout.shape
    dap = np.zeros(padded)
    for i in range(ho):
        for j in range(wo):
            route = np.zeros((n, size * size, c))
            np.put_along_axis(route, first[:, i, j, None, :], dout[:, i, j, None, :], axis=1)
            dap[:, i * size:(i + 1) * size, j * size:(j + 1) * size, :] = route.reshape(
                n, size, size, c)
    return dap[:, top:top + shape[1], left:left + shape[2], :]
'''

IM2COL = '''def im2col(x, k):
    n, height, width, c = x.shape
    ho, wo = height - k + 1, width - k + 1
    cols = np.empty((n, ho, wo, k, k, c))
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = x[:, i:i + ho, j:j + wo, :]
    return cols.reshape(n * ho * wo, k * k * c)


def col2im(dcols, shape, k):
    n, height, width, c = shape
    ho, wo = height - k + 1, width - k + 1
    dcols = dcols.reshape(n, ho, wo, k, k, c)
    dx = np.zeros(shape)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + ho, j:j + wo, :] += dcols[:, :, :, i, j, :]
    return dx
'''

FLATTEN = '''def flatten_forward(a):
    return a.transpose(0, 3, 1, 2).reshape(len(a), -1)


def flatten_backward(d, shape):
    n, height, width, c = shape
    return d.reshape(n, c, height, width).transpose(0, 2, 3, 1)
'''

GELU = '''def gelu_forward(z):
    cdf = 0.5 * (1 + erf(z / np.sqrt(2)))
    return z * cdf


def gelu_backward(d, z):
    cdf = 0.5 * (1 + erf(z / np.sqrt(2)))
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return d * (cdf + z * pdf)
'''

GELU_TANH = '''def gelu_tanh_forward(z):
    t = np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))
    return 0.5 * z * (1 + t)


def gelu_tanh_backward(d, z):
    t = np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))
    du = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z**2)
    return d * (0.5 * (1 + t) + 0.5 * z * (1 - t**2) * du)
'''

AVGPOOL = '''def avgpool_forward(a, size, padding):
    n, height, width, c = a.shape
    top, bottom = pads(height, size, size, padding)
    left, right = pads(width, size, size, padding)
    widths = ((0, 0), (top, bottom), (left, right), (0, 0))
    ap, real = np.pad(a, widths), np.pad(np.ones((1, height, width, 1)), widths)
    ho, wo = ap.shape[1] // size, ap.shape[2] // size
    out = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size)
            out[:, i, j, :] = ap[:, rows, cols, :].sum(axis=(1, 2)) / real[:, rows, cols].sum()
    return out


def avgpool_backward(d, shape, size, padding):
    n, height, width, c = shape
    top, bottom = pads(height, size, size, padding)
    left, right = pads(width, size, size, padding)
    real = np.pad(np.ones((1, height, width, 1)), ((0, 0), (top, bottom), (left, right), (0, 0)))
    dap = np.zeros((n, height + top + bottom, width + left + right, c))
    for i in range(d.shape[1]):
        for j in range(d.shape[2]):
            rows, cols = slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size)
            dap[:, rows, cols, :] += d[:, i, j, None, None, :] / real[:, rows, cols].sum()
    return dap[:, top:top + height, left:left + width, :]
'''

GLOBAL_AVGPOOL = '''def global_avgpool_forward(a):
    return a.mean(axis=(1, 2))


def global_avgpool_backward(d, shape):
    n, height, width, c = shape
    return np.broadcast_to(d[:, None, None, :] / (height * width), shape).copy()
'''

DROPOUT = '''def dropout_forward(h, mask, keep_prob):
    return h * mask / keep_prob


def dropout_backward(d, mask, keep_prob):
    return d * mask / keep_prob
'''

PRELU = '''def prelu_forward(z, a):
    return np.where(z > 0, z, a * z)


def prelu_backward(d, z, a):
    dz = d * np.where(z > 0, 1.0, a)
    da = np.sum(d * np.minimum(z, 0), axis=(0, 1, 2))
    return dz, da
'''
