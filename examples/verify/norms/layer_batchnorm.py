"""The CS231n assignment's batch normalisation pair on its own, checked layer by layer:
batchnorm_forward (training mode) and batchnorm_backward (the computational graph walked back
node by node); batchnorm_backward_alt is the simplified one-line form (declare it as the
backward to check it instead).
"""

import numpy as np

NNPARITY = {
    "layer": {"kind": "batchnorm", "input_dim": 4, "momentum": 0.9, "epsilon": 1e-5},
    "model": "{'mode': 'train', 'eps': 1e-5, 'momentum': 0.9}",  # bn_param
    "running_mean": "model['running_mean']",
    "running_var": "model['running_var']",
    "forward": "batchnorm_forward(x, gamma, beta, model)",
    "norm_out": "out[0]",
    "backward": "batchnorm_backward(dout, out[1])",
    "dx": "back[0]",
    "dgamma": "back[1]",
    "dbeta": "back[2]",
}


def batchnorm_forward(x, gamma, beta, bn_param):
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


def batchnorm_backward_alt(dout, cache):
    xhat, gamma, _, ivar, *_ = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * ivar / n * (n * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
