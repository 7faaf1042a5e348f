r"""A short derivation per section of the teaching page: the chain rule down to each delta.

:data:`DERIVATIONS` maps a block's key to its steps, each ``(prose, LaTeX)``: the prose says which
dependency the chain rule follows, the formula is the step (shown as MathML). :data:`CITES` maps
a block's key to the keys of the source documents (:mod:`.sources`) it follows. Notation: ``L``
the loss, ``z`` a pre-activation, ``h = f(z)``, ``o`` the logits, ``t`` the targets, ``\delta``
the delta ``\partial L / \partial z``.
"""

from __future__ import annotations

Step = tuple[str, str]

D = r"\frac{\partial L}{\partial z_{nj}}"


def _elementwise(derivative: str) -> tuple[Step, ...]:
    return (("h = f(z) acts entry by entry, so z_ni reaches the loss only through h_ni; the "
             "chain rule has a single term:",
             r"\frac{\partial L}{\partial z_{ni}} = \frac{\partial L}{\partial h_{ni}}\,"
             r"\frac{\partial h_{ni}}{\partial z_{ni}} = \frac{\partial L}{\partial h_{ni}}\, "
             r"f'(z_{ni})"),
            ("with this activation's derivative:", derivative))


DERIVATIONS: dict[str, tuple[Step, ...]] = {
    "dense": (
        ("Written entry by entry, the layer is:", r"z_{nj} = \sum_i h_{ni} W_{ij} + b_j"),
        ("W_ij enters every row n of column j, once: the chain rule sums over the batch.",
         rf"\frac{{\partial L}}{{\partial W_{{ij}}}} = \sum_n {D}\, "
         rf"\frac{{\partial z_{{nj}}}}{{\partial W_{{ij}}}} = \sum_n h_{{ni}} {D} = "
         r"\Big(h^\top \frac{\partial L}{\partial z}\Big)_{ij}"),
        ("h_ni enters every z_nj of its row: summing over j gives the delta sent down.",
         rf"\frac{{\partial L}}{{\partial h_{{ni}}}} = \sum_j {D}\, W_{{ij}} = "
         r"\Big(\frac{\partial L}{\partial z} W^\top\Big)_{ni},\quad "
         rf"\frac{{\partial L}}{{\partial b_j}} = \sum_n {D}"),
        ("With an activation below (h_l = f(z_l)), this is the lecture's recursion of deltas:",
         r"\delta_l = \big(\delta_{l+1} W_{l+1}^\top\big) \odot f'(z_l),\quad "
         r"\frac{\partial L}{\partial W_l} = h_{l-1}^\top \delta_l"),
    ),
    "sigmoid": _elementwise(r"\sigma'(z) = \frac{e^{-z}}{(1 + e^{-z})^2} = \sigma(z)\,"
                            r"(1 - \sigma(z)) = h (1 - h)"),
    "tanh": _elementwise(r"\tanh'(z) = 1 - \tanh^2(z) = 1 - h^2"),
    "relu": _elementwise(r"\max(z, 0)' = [z > 0]\quad(\text{no derivative at } 0"
                         r"\text{; the frameworks take } 0)"),
    "relu3": _elementwise(r"\frac{d}{dz} \max(z, 0)^3 = 3 \max(z, 0)^2"),
    "identity": _elementwise(r"\frac{dz}{dz} = 1"),
    "prelu": (
        *_elementwise(r"\frac{\partial h}{\partial z} = \begin{cases} 1 & z > 0 \\ a & z \le 0"
                      r"\end{cases}"),
        ("The slope a is shared by every entry, so its gradient sums over all of them:",
         r"\frac{\partial L}{\partial a} = \sum_{n,i} \frac{\partial L}{\partial h_{ni}}\,"
         r"\frac{\partial h_{ni}}{\partial a} = \sum_{n,i} \frac{\partial L}{\partial h_{ni}}"
         r"\min(z_{ni}, 0)"),
    ),
    "softmax-ce": (
        ("With p = softmax(o), the log of a probability is a difference:",
         r"\log p_{nk} = o_{nk} - \log \sum_j e^{o_{nj}},\quad "
         r"\frac{\partial \log p_{nk}}{\partial o_{nm}} = [k = m] - p_{nm}"),
        ("L = -sum t log p; the rows of t sum to 1:",
         r"\frac{\partial L}{\partial o_{nm}} = -\sum_k t_{nk} ([k = m] - p_{nm}) = "
         r"p_{nm} - t_{nm}"),
    ),
    "l2": (("The 1/2 cancels the 2 of the square:",
            r"\frac{\partial}{\partial o_{nk}} \tfrac{1}{2} \sum (o - t)^2 = o_{nk} - t_{nk}"),),
    "log-loss": (
        ("With p = sigma(o) and sigma' = p (1 - p):",
         r"L = -\sum t \log p + (1 - t) \log (1 - p)"),
        ("the chain rule through p:",
         r"\frac{\partial L}{\partial o} = -\Big(\frac{t}{p} - \frac{1 - t}{1 - p}\Big) p(1 - p) = "
         r"p - t = \sigma(o) - t"),
    ),
    "sum-vs-mean": (
        ("The mean is the sum times a constant, and constants pass through the chain rule:",
         r"L_{\mathrm{mean}} = \frac{1}{N} L_{\mathrm{sum}} \;\Rightarrow\; "
         r"\frac{\partial L_{\mathrm{mean}}}{\partial W_l} = \frac{1}{N} "
         r"\frac{\partial L_{\mathrm{sum}}}{\partial W_l}"),
        ("so every delta and every gradient below the loss carries the same 1/N:",
         r"\delta_L = \frac{1}{N} (\mathrm{softmax}(o) - t)"),
    ),
    "weight-decay": (
        ("The penalty is a second term of the loss; the gradient of a sum is the sum:",
         r"\frac{\partial}{\partial W} \Big(L_{\mathrm{data}} + \tfrac{\lambda}{2} \sum W^2\Big)"
         r" = g + \lambda W"),
        ("one SGD step shrinks W before it follows g (hence decay):",
         r"W \leftarrow W - \eta (g + \lambda W) = (1 - \eta \lambda) W - \eta g"),
    ),
    "conv-same-stride2": (
        ("W_pqcf enters every output position (n, i, j) of filter f once:",
         r"\frac{\partial L}{\partial W_{pqcf}} = \sum_{n,i,j} "
         r"\frac{\partial L}{\partial z_{nijf}}\, x^{\mathrm{pad}}_{n,si+p,sj+q,c},\quad "
         r"\frac{\partial L}{\partial b_f} = \sum_{n,i,j} \frac{\partial L}{\partial z_{nijf}}"),
        ("a padded input pixel (u, v) enters every window that covers it:",
         r"\frac{\partial L}{\partial x^{\mathrm{pad}}_{nuvc}} = \sum_{\substack{i,j,p,q \\ "
         r"si+p=u,\; sj+q=v}} \sum_f \frac{\partial L}{\partial z_{nijf}}\, W_{pqcf}"),
        ("and the gradient of x is that of x^pad with the padding cut off (SAME pads the "
         "bottom/right more).", r"\frac{\partial L}{\partial x} = \Big(\frac{\partial L}"
         r"{\partial x^{\mathrm{pad}}}\Big)_{\text{without the padding}}"),
    ),
    "conv-valid": (
        ("At stride 1 without padding, input pixel (u, v) is seen by output (i, j) at kernel "
         "offset (u - i, v - j):",
         r"\frac{\partial L}{\partial x_{nuvc}} = \sum_{i,j} \sum_f "
         r"\frac{\partial L}{\partial z_{nijf}}\, W_{u-i,\,v-j,\,c,f}"),
        ("a full correlation of the deltas with the flipped kernel; W's gradient is as above:",
         r"\frac{\partial L}{\partial W_{pqcf}} = \sum_{n,i,j} \frac{\partial L}"
         r"{\partial z_{nijf}}\, x_{n,i+p,j+q,c}"),
    ),
    "maxpool": (
        ("y is one of the window's inputs, the winner; its derivative is 1 for the winner and 0 "
         "for the others:", r"\frac{\partial y_{nijc}}{\partial x_{n,si+p,sj+q,c}} = "
         r"[(p, q) = (p^*, q^*)]"),
        ("an input that wins several windows collects from each:",
         r"\frac{\partial L}{\partial x_{nuvc}} = \sum_{i,j:\,(si+p^*, sj+q^*) = (u, v)} "
         r"\frac{\partial L}{\partial y_{nijc}}"),
    ),
    "avgpool": (
        ("Each output is a weighted sum of its window's cells, weight 1/d (d: the real cells), "
         "so each cell receives 1/d of the gradient of every window that covers it:",
         r"\frac{\partial L}{\partial x_{n,a,b,c}} = \sum_{(i,j) \ni (a,b)} \frac{1}{d_{ij}}\, "
         r"\frac{\partial L}{\partial y_{n,i,j,c}}"),
    ),
    "global-avgpool": (
        ("Every cell of a channel enters its mean once, with weight 1/(H W):",
         r"\frac{\partial y_{n,c}}{\partial x_{n,i,j,c}} = \frac{1}{H W} \;\Rightarrow\; "
         r"\frac{\partial L}{\partial x_{n,i,j,c}} = \frac{1}{H W}\, "
         r"\frac{\partial L}{\partial y_{n,c}}"),
    ),
    "flatten": (
        ("Flattening only moves numbers, so its backward moves the gradients back:",
         r"\frac{\partial L}{\partial x} = \mathrm{unflat}\Big(\frac{\partial L}{\partial z}"
         r" W^\top\Big)"),
        ("NCHW order is NHWC order permuted by a permutation matrix Pi, so the same layer needs "
         "W's rows permuted:", r"\mathrm{flat}_{\mathrm{NHWC}}(x)\, W = "
         r"\mathrm{flat}_{\mathrm{NCHW}}(x)\, \Pi^\top W"),
    ),
    "dropout": (
        ("With the mask fixed, dropout is a product by a constant:",
         r"\frac{\partial y_{ni}}{\partial h_{ni}} = \frac{m_{ni}}{p} \;\Rightarrow\; "
         r"\frac{\partial L}{\partial h} = \frac{\partial L}{\partial y} \odot \frac{m}{p}"),
        ("dividing by p keeps the expectation, so inference needs no scaling:",
         r"\mathbb{E}[y] = h\, \frac{\mathbb{E}[m]}{p} = h"),
    ),
    "batchnorm": (
        ("Through xhat, x_n reaches the loss directly and through mu and sigma^2, which every "
         "sample shares; with the upstream gradient g = gamma dL/dy:",
         r"\frac{\partial L}{\partial \sigma^2} = -\tfrac{1}{2} (\sigma^2 + \epsilon)^{-3/2} "
         r"\sum_n g_n (x_n - \mu),\quad \frac{\partial L}{\partial \mu} = "
         r"-\frac{\sum_n g_n}{\sqrt{\sigma^2 + \epsilon}}"),
        ("the three paths summed, with dsigma^2/dx_n = 2 (x_n - mu)/m and dmu/dx_n = 1/m:",
         r"\frac{\partial L}{\partial x_n} = \frac{g_n}{\sqrt{\sigma^2 + \epsilon}} + "
         r"\frac{\partial L}{\partial \sigma^2} \frac{2 (x_n - \mu)}{m} + "
         r"\frac{1}{m} \frac{\partial L}{\partial \mu}"),
    ),
    "layernorm": (
        ("The same chain rule as batch normalisation, with the statistics over a row's D "
         "features instead of the batch; g = gamma dL/dy, r = 1/sqrt(sigma^2 + epsilon):",
         r"\frac{\partial L}{\partial x_{ni}} = r_n \Big(g_{ni} - \tfrac{1}{D} \sum_j g_{nj} - "
         r"\hat x_{ni}\, \tfrac{1}{D} \sum_j g_{nj} \hat x_{nj}\Big)"),
    ),
    "residual": (
        ("x reaches y along two paths, the skip and f; the chain rule adds them:",
         r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\, "
         r"\frac{\partial y}{\partial x}\Big|_{\mathrm{skip}} + \frac{\partial L}{\partial y}\, "
         r"\frac{\partial f}{\partial x} = \frac{\partial L}{\partial y} + \delta W^\top"),
    ),
    "gelu": _elementwise(r"\frac{d}{dz} z \Phi(z) = \Phi(z) + z \Phi'(z) = \Phi(z) + "
                         r"z\, \varphi(z)"),
    "gelu-tanh": _elementwise(r"\frac{d}{dz} \tfrac{1}{2} z (1 + \tanh u) = \tfrac{1}{2} "
                              r"(1 + \tanh u) + \tfrac{1}{2} z (1 - \tanh^2 u)\, "
                              r"\frac{du}{dz}"),
    "sgd": (
        ("A step against the gradient lowers the loss to first order:",
         r"L(W - \eta g) \approx L(W) - \eta \lVert g \rVert^2 \le L(W)"),
    ),
    "momentum": (
        ("PyTorch's velocity sums the gradients, Keras' sums the steps; with u = -eta v:",
         r"u_t = \mu u_{t-1} - \eta g_t = -\eta (\mu v_{t-1} + g_t) = -\eta v_t"),
        ("so both take the same step:",
         r"W_t = W_{t-1} + u_t = W_{t-1} - \eta v_t"),
    ),
    "adam": (
        ("Moving averages of g and g squared, started at 0, so each is biased towards 0:",
         r"m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t,\quad "
         r"v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2"),
        ("dividing by 1 - beta^t removes the bias (the weights of the average sum to it):",
         r"\hat m_t = \frac{m_t}{1 - \beta_1^t},\quad \hat v_t = \frac{v_t}{1 - \beta_2^t},"
         r"\quad W \leftarrow W - \eta \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}"),
        ("Keras folds the corrections into alpha; that is the same step with another epsilon:",
         r"\alpha_t \frac{m_t}{\sqrt{v_t} + \hat\epsilon} = \eta \frac{\hat m_t}{\sqrt{\hat v_t}"
         r" + \epsilon}\;\text{ when }\; \hat\epsilon = \epsilon \sqrt{1 - \beta_2^t}"),
    ),
}

CITES: dict[str, tuple[str, ...]] = {
    "dense": ("bp-lecture", "numpy-blog"),
    "sigmoid": ("bp-lecture", "basics-lecture"),
    "tanh": ("basics-lecture", "fashion-report"),
    "relu": ("bp-lecture", "numpy-blog"),
    "relu3": ("fashion-report",),
    "identity": ("bp-lecture",),
    "prelu": ("framework-notes",),
    "softmax-ce": ("bp-lecture", "basics-lecture"),
    "l2": ("bp-lecture",),
    "log-loss": ("basics-lecture",),
    "sum-vs-mean": ("framework-notes", "numpy-blog"),
    "weight-decay": ("numpy-blog",),
    "conv-same-stride2": ("framework-notes",),
    "conv-valid": ("framework-notes",),
    "maxpool": ("framework-notes",),
    "avgpool": (),  # none of the source documents averages
    "global-avgpool": (),
    "flatten": ("framework-notes",),
    "dropout": ("framework-notes",),
    "batchnorm": (),  # none of the source documents normalises
    "layernorm": (),
    "residual": (),
    "gelu": (),  # none of the source documents uses GELU
    "gelu-tanh": (),
    "sgd": ("bp-lecture",),
    "momentum": (),  # none of the source documents uses momentum
    "adam": ("fashion-report", "framework-notes"),
}
