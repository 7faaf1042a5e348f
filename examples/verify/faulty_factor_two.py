"""FAULTY (the 1/2 of the L2 loss): the BP lecture's function style with the squared error
summed without its 1/2, while its gradient is o - t.

Every gradient is right; only the loss is twice the reference's. `nnparity verify` names the
loss and diagnoses "the L2 loss without the 1/2".
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 4, "layers": [6, 5, 3], "activations": ["relu", "relu", "identity"],
             "loss": "l2", "reduction": "sum"},
    "layout": "row",
    "lr": 0.05,
    "model": "bulid_net(4, [6, 5, 3], [relu, relu, no_active], [de_relu, de_relu, de_no_active])",
    "W": "model[{i}]['w']",
    "b": "model[{i}]['b']",
    "forward": "fead_forward(x, model)",
    "z": "out[1][{i}]",
    "h": ["out[0][1]", "out[0][2]", "out[2]"],
    "backward": "updata_wb(x, y, model, loss_L2, de_loss_L2, alpha=lr)",
    "loss": "back[1]",
    "delta": "back[2][{i}]",
    "W_new": "back[0][{i}]['w']",
    "b_new": "back[0][{i}]['b']",
}


def relu(z):
    return np.maximum(z, 0)


def de_relu(z, h):
    return (z > 0).astype(z.dtype)


def no_active(z):
    return z


def de_no_active(z, h):
    return np.ones(h.shape)


def softmax(o):
    e = np.exp(o - np.max(o, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def loss_CE(o, lab):
    p = softmax(o)
    return np.sum(-lab * np.log(p))


def de_loss_CE(o, lab):
    return softmax(o) - lab


def loss_L2(o, lab):
    return np.sum((o - lab) ** 2)     # BUG: the L2 loss is 0.5 * sum((o - lab) ** 2)


def de_loss_L2(o, lab):
    return o - lab


def bulid_net(dim_in, list_num_hidden, list_act_funs, list_de_act_funs):
    layers = []
    for i in range(len(list_num_hidden)):
        layer = {}
        rows = dim_in if i == 0 else list_num_hidden[i - 1]
        layer["w"] = 0.01 * np.random.randn(rows, list_num_hidden[i])
        layer["b"] = 0.1 * np.ones([1, list_num_hidden[i]])
        layer["act_fun"] = list_act_funs[i]
        layer["de_act_fun"] = list_de_act_funs[i]
        layers.append(layer)
    return layers


def fead_forward(datas, layers):
    input_layers, input_acfun = [], []
    h = datas
    for layer in layers:
        inputs = h
        z = np.dot(inputs, layer["w"]) + layer["b"]
        h = layer["act_fun"](z)
        input_layers.append(inputs)
        input_acfun.append(z)
    return input_layers, input_acfun, h


def updata_wb(datas, labs, layers, loss_fun, de_loss_fun, alpha=0.01):
    inputs, input_acfun, output = fead_forward(datas, layers)
    loss = loss_fun(output, labs)
    deltas0 = de_loss_fun(output, labs)
    deltas = []
    for i in range(len(layers)):
        index = -i - 1
        if i == 0:
            h, z = output, input_acfun[index]
            delta = deltas0 * layers[index]["de_act_fun"](z, h)
        else:
            h, z = inputs[index + 1], input_acfun[index]
            delta = np.dot(delta, layers[index + 1]["w"].T) * layers[index]["de_act_fun"](z, h)
        deltas.insert(0, delta)
    for i in range(len(layers)):
        dw = np.dot(inputs[i].T, deltas[i])
        db = np.sum(deltas[i], axis=0, keepdims=True)
        layers[i]["w"] = layers[i]["w"] - alpha * dw
        layers[i]["b"] = layers[i]["b"] - alpha * db
    return layers, loss, deltas
