"""The textbook form of each block of the teaching page: the formulas on the blackboard, in NumPy.

One function per block, named as the block's framework functions, taking the block's example as
keyword arguments (canonical layout: ``x [N, D_in]``, ``W [D_in, D_out]``, NHWC, HWIO) and
returning the reference's outputs under the same names. They are written for reading, not speed
(loops over output positions, whole-array temporaries); the page shows them in its NumPy column
and a test asserts that each equals the optimised reference on random float64 inputs. NumPy only.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
Out = dict[str, Array]


def dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    z = x @ W + b
    dx = dz @ W.T           # dL/dx = dL/dz W^T
    dW = x.T @ dz           # dL/dW = x^T dL/dz
    db = dz.sum(axis=0)     # dL/db = column sums of dL/dz
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def sigmoid(z: Array, dh: Array) -> Out:
    h = 1 / (1 + np.exp(-z))
    return {"h": h, "dz": dh * h * (1 - h)}


def tanh(z: Array, dh: Array) -> Out:
    h = np.tanh(z)
    return {"h": h, "dz": dh * (1 - h**2)}


def relu(z: Array, dh: Array) -> Out:
    h = np.maximum(z, 0)
    return {"h": h, "dz": dh * (z > 0)}     # relu'(0) = 0


def relu3(z: Array, dh: Array) -> Out:
    h = np.maximum(z, 0) ** 3
    return {"h": h, "dz": dh * 3 * np.maximum(z, 0) ** 2}


def identity(z: Array, dh: Array) -> Out:
    return {"h": z, "dz": dh}


def prelu(z: Array, a: Array, dh: Array) -> Out:
    h = np.where(z > 0, z, a * z)
    dz = dh * np.where(z > 0, 1, a)                       # PReLU'(0) = a
    da = np.sum(dh * np.minimum(z, 0)).reshape(a.shape)   # one shared slope
    return {"h": h, "dz": dz, "da": da}


def softmax(o: Array) -> Array:
    """Row-wise softmax; subtracting the row maximum changes nothing but avoids overflow."""
    e = np.exp(o - o.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot(y: Array, k: int) -> Array:
    """Class indices ``y [N]`` as rows of the identity ``[N, k]``."""
    return np.eye(k)[y]


def softmax_ce(o: Array, y: Array) -> Out:
    p, t = softmax(o), one_hot(y, o.shape[1])
    loss = -np.sum(t * np.log(p))
    return {"loss": loss, "do": p - t}


def l2(o: Array, t: Array) -> Out:
    return {"loss": 0.5 * np.sum((o - t) ** 2), "do": o - t}


def log_loss(o: Array, t: Array) -> Out:
    p = 1 / (1 + np.exp(-o))
    loss = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p))
    return {"loss": loss, "do": p - t}


def mean_ce(o: Array, y: Array) -> Out:
    n = o.shape[0]  # the mean divides by the N samples, not by N K
    p, t = softmax(o), one_hot(y, o.shape[1])
    return {"loss": -np.sum(t * np.log(p)) / n, "do": (p - t) / n}


def weight_decay(W: Array, g: Array, lr: float, wd: float) -> Out:
    penalty = wd / 2 * np.sum(W**2)
    dW = wd * W
    W_next = W - lr * (g + dW)  # one SGD step with the data gradient g
    return {"penalty": penalty, "dW": dW, "W after one SGD step": W_next}


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis: (before, after), the odd pixel after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def pad(x: Array, k: int, stride: int, padding: str, value: float = 0.0) -> Array:
    """``x [N, H, W, C]`` padded on H and W (nothing for VALID)."""
    if padding == "VALID":
        return x
    rows, cols = same_pads(x.shape[1], k, stride), same_pads(x.shape[2], k, stride)
    return np.pad(x, ((0, 0), rows, cols, (0, 0)), constant_values=value)


def unpad(xp: Array, x: Array, k: int, stride: int, padding: str) -> Array:
    """The part of the padded ``xp`` that is ``x``."""
    if padding == "VALID":
        return xp
    top, left = same_pads(x.shape[1], k, stride)[0], same_pads(x.shape[2], k, stride)[0]
    return xp[:, top:top + x.shape[1], left:left + x.shape[2], :]


def at(i: int, j: int, k: int, stride: int) -> tuple[slice, slice, slice, slice]:
    """The index of the k x k window of output position (i, j) in ``[N, H, W, C]``."""
    return (slice(None), slice(i * stride, i * stride + k),
            slice(j * stride, j * stride + k), slice(None))


def conv2d(x: Array, W: Array, b: Array, dz: Array, stride: int,
           padding: str) -> Out:
    k = W.shape[0]
    xp = pad(x, k, stride, padding)
    z = np.empty(dz.shape)
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for i in range(dz.shape[1]):
        for j in range(dz.shape[2]):
            patch = xp[at(i, j, k, stride)]  # [N, k, k, C]
            z[:, i, j] = np.einsum("npqc,pqcf->nf", patch, W) + b
            dW += np.einsum("npqc,nf->pqcf", patch, dz[:, i, j])
            dxp[at(i, j, k, stride)] += np.einsum("nf,pqcf->npqc", dz[:, i, j], W)
    dx = unpad(dxp, x, k, stride, padding)
    return {"z": z, "dx": dx, "dW": dW, "db": dz.sum(axis=(0, 1, 2))}


def maxpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    xp = pad(x, k, stride, "SAME", value=-np.inf)  # padding never wins
    n, _, _, c = dy.shape
    y, dxp = np.empty(dy.shape), np.zeros_like(xp)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            window = xp[at(i, j, k, stride)].reshape(n, k * k, c)
            y[:, i, j] = window.max(axis=1)
            first = window.argmax(axis=1)  # a tie: the first maximum wins
            grad = np.zeros_like(window)
            np.put_along_axis(grad, first[:, None], dy[:, i, j][:, None], axis=1)
            dxp[at(i, j, k, stride)] += grad.reshape(n, k, k, c)
    return {"y": y, "dx": unpad(dxp, x, k, stride, "SAME")}


def avgpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    xp = pad(x, k, stride, "SAME")
    real = pad(np.ones_like(x), k, stride, "SAME")  # 1 on the map, 0 on the padding
    y, dxp = np.empty(dy.shape), np.zeros_like(xp)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            d = real[at(i, j, k, stride)][0, :, :, 0].sum()  # the window's real cells
            y[:, i, j] = xp[at(i, j, k, stride)].sum(axis=(1, 2)) / d
            dxp[at(i, j, k, stride)] += dy[:, i, j][:, None, None, :] / d
    return {"y": y, "dx": unpad(dxp, x, k, stride, "SAME")}


def global_avgpool(x: Array, dy: Array) -> Out:
    cells = x.shape[1] * x.shape[2]  # H W
    dx = np.ones_like(x) * dy[:, None, None, :] / cells  # every cell gets 1/(H W)
    return {"y": x.sum(axis=(1, 2)) / cells, "dx": dx}


def flatten_dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    flat = x.reshape(x.shape[0], -1)  # NHWC order: (h, w, c), c fastest
    z = flat @ W + b
    dx = (dz @ W.T).reshape(x.shape)
    return {"z": z, "dx": dx, "dW": flat.T @ dz}


def dropout(h: Array, mask: Array, keep_prob: float, dy: Array) -> Out:
    return {"y": h * mask / keep_prob, "dh": dy * mask / keep_prob}


def batchnorm(x: Array, gamma: Array, beta: Array, dy: Array, epsilon: float) -> Out:
    m = x.shape[0]                          # values per feature
    mu = x.mean(axis=0)                     # batch statistics, per feature
    var = ((x - mu) ** 2).mean(axis=0)      # biased: divided by m
    xhat = (x - mu) / np.sqrt(var + epsilon)
    y = gamma * xhat + beta
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dxhat = dy * gamma
    dvar = (dxhat * (x - mu)).sum(axis=0) * -0.5 * (var + epsilon) ** -1.5
    dmu = -dxhat.sum(axis=0) / np.sqrt(var + epsilon) - 2 * dvar * (x - mu).mean(axis=0)
    dx = dxhat / np.sqrt(var + epsilon) + dvar * 2 * (x - mu) / m + dmu / m
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def layernorm(x: Array, gamma: Array, beta: Array, dy: Array, epsilon: float) -> Out:
    """Batch normalisation of the transposed rows: the same chain rule, per sample."""
    xt = batchnorm(x.T, np.ones(x.shape[0]), np.zeros(x.shape[0]), (dy * gamma).T, epsilon)
    xhat = xt["y"].T
    return {"y": gamma * xhat + beta, "dx": xt["dx"].T,
            "dgamma": (dy * xhat).sum(axis=0), "dbeta": dy.sum(axis=0)}


def residual(x: Array, W: Array, b: Array, dy: Array) -> Out:
    f = np.tanh(x @ W + b)          # the residual path
    y = x + f                       # plus the skip path
    delta = dy * (1 - f**2)         # dL/dz of the inner dense layer
    dx = dy + delta @ W.T           # the two paths' gradients add
    return {"y": y, "dx": dx, "dW": x.T @ delta, "db": delta.sum(axis=0)}


def erf(x: Array) -> Array:
    """erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)): positive terms."""
    term = total = x
    for n in range(1, 200):
        term = term * 2 * x**2 / (2 * n + 1)
        total = total + term
    return 2 / np.sqrt(np.pi) * np.exp(-x**2) * total


def gelu(z: Array, dh: Array) -> Out:
    Phi = 0.5 * (1 + erf(z / np.sqrt(2)))           # the standard normal's CDF
    phi = np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)    # and its density
    return {"h": z * Phi, "dz": dh * (Phi + z * phi)}


def gelu_tanh(z: Array, dh: Array) -> Out:
    u = np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)
    h = 0.5 * z * (1 + np.tanh(u))
    du = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z**2)
    return {"h": h, "dz": dh * (0.5 * (1 + np.tanh(u)) + 0.5 * z * (1 - np.tanh(u)**2) * du)}


def keras32(value: float) -> float:
    """A hyperparameter as Keras keeps it: rounded to float32, even for float64 variables."""
    return float(np.float32(value))


def sgd(W: Array, grads: list[Array], lr: float) -> Out:
    torch_W, keras_W = W, W
    for g in grads:
        torch_W = torch_W - lr * g
        keras_W = keras_W - keras32(lr) * g
    return {"W (torch formula)": torch_W,
            "W (keras formula)": keras_W}


def momentum(W: Array, grads: list[Array], lr: float, mu: float) -> Out:
    torch_W, torch_v = W, 0.0
    keras_W, keras_v = W, 0.0
    for g in grads:
        torch_v = mu * torch_v + g  # PyTorch: v sums the gradients
        torch_W = torch_W - lr * torch_v
        keras_v = keras32(mu) * keras_v - keras32(lr) * g  # Keras: the steps
        keras_W = keras_W + keras_v
    return {"W (torch formula)": torch_W,
            "W (keras formula)": keras_W}


def adam(W: Array, grads: list[Array], lr: float,
         beta1: float = 0.9, beta2: float = 0.999) -> Out:
    torch_W, keras_W = W, W
    m = v = 0.0
    b1, b2 = keras32(beta1), keras32(beta2)  # as Keras keeps them
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g     # first moment
        v = beta2 * v + (1 - beta2) * g**2  # second moment
        m_hat = m / (1 - beta1**t)          # bias corrections
        v_hat = v / (1 - beta2**t)
        # the paper, PyTorch: epsilon after the correction
        torch_W = torch_W - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        # Keras: the corrections in alpha, epsilon-hat before them
        alpha = keras32(lr) * np.sqrt(1 - b2**t) / (1 - b1**t)
        keras_W = keras_W - alpha * m / (np.sqrt(v) + 1e-7)
    return {"W (torch formula)": torch_W,
            "W (keras formula)": keras_W}
