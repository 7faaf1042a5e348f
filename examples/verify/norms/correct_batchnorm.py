"""A two-layer MLP with batch normalisation after the hidden activation, the CS231n assignment's
batchnorm_forward / batchnorm_backward pair (the step-by-step computational-graph backward) in
the function style: x -> affine -> tanh -> batchnorm -> affine -> softmax cross-entropy (mean).
"""

import numpy as np

NNPARITY = {
    "spec": {"input_shape": [4], "loss": "ce", "reduction": "mean",
             "net": [{"kind": "dense", "units": 6}, {"kind": "tanh"},
                     {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-5},
                     {"kind": "dense", "units": 3}]},
    "bias_shape": "flat",
    "lr": 0.1,
    "model": "{'mode': 'train', 'eps': 1e-5, 'momentum': 0.9}",  # bn_param, kept between steps
    "running_mean": ["model['running_mean']"],
    "running_var": ["model['running_var']"],
    "forward": "forward(x, W, b, gamma1, beta1, model)",
    "z": ["out['z1']", "out['z2']"],
    "norm_out": ["out['bn']"],
    "backward": "backward(out, y)",
    "loss": "back['loss']",
    "delta": ["back['dz1']", "back['dz2']"],
    "dW": "back['dW{l}']",
    "db": "back['db{l}']",
    "dgamma": ["back['dgamma']"],
    "dbeta": ["back['dbeta']"],
    "update": "update(W, b, gamma1, beta1, back)",
    "W_new": "upd[0][{i}]",
    "b_new": "upd[1][{i}]",
    "gamma_new": ["upd[2]"],
    "beta_new": ["upd[3]"],
}


def batchnorm_forward(x, gamma, beta, bn_param):
    """Training-mode batch normalisation of x [N, D]; updates the running statistics in
    bn_param (running = momentum * running + (1 - momentum) * batch, biased variance)."""
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    d = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    mu = x.mean(axis=0)
    xmu = x - mu
    var = (xmu ** 2).mean(axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
    bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    return out, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)


def batchnorm_backward(dout, cache):
    """The computational graph walked back node by node: dx, dgamma, dbeta."""
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    divar = (dxhat * xmu).sum(axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1 / sqrtvar ** 2 * divar
    dvar = 0.5 / np.sqrt(var + eps) * dsqrtvar
    dsq = np.ones_like(dout) / n * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -(dxmu1 + dxmu2).sum(axis=0)
    dx2 = np.ones_like(dout) / n * dmu
    return dx1 + dx2, dgamma, dbeta


def forward(x, W, b, gamma, beta, bn_param):
    z1 = x @ W[0] + b[0]
    h1 = np.tanh(z1)
    bn, cache = batchnorm_forward(h1, gamma, beta, bn_param)
    z2 = bn @ W[1] + b[1]
    return {"x": x, "z1": z1, "h1": h1, "bn": bn, "cache": cache, "z2": z2, "W": W}


def backward(out, y):
    z2, n = out["z2"], out["z2"].shape[0]
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * np.log(p)) / n
    dz2 = (p - y) / n
    dbn = dz2 @ out["W"][1].T
    dh1, dgamma, dbeta = batchnorm_backward(dbn, out["cache"])
    dz1 = dh1 * (1 - out["h1"] ** 2)
    return {"loss": loss, "dz2": dz2, "dz1": dz1, "dW1": out["x"].T @ dz1, "db1": dz1.sum(0),
            "dW2": out["bn"].T @ dz2, "db2": dz2.sum(0), "dgamma": dgamma, "dbeta": dbeta}


def update(W, b, gamma, beta, back, lr=0.1):
    return ([W[0] - lr * back["dW1"], W[1] - lr * back["dW2"]],
            [b[0] - lr * back["db1"], b[1] - lr * back["db2"]],
            gamma - lr * back["dgamma"], beta - lr * back["dbeta"])
