"""The source documents the teaching page cites: full titles as the documents give them.

Each :class:`Source` is cited by its ``key`` (a section's ``source``) and listed, in this order,
in the page's "Sources" section; ``nickname`` is how the page's prose refers to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """``key`` (anchor), ``nickname``, ``author`` (as the document names it, or empty),
    ``title`` (as the document gives it), ``english`` (a translation of the title), ``details``
    (institution, kind, date as given)."""

    key: str
    nickname: str
    author: str
    title: str
    english: str
    details: str

    def citation(self) -> str:
        """One line: author, title (English title), details."""
        who = f"{self.author}: " if self.author else ""
        return f"{who}“{self.title}” ({self.english}). {self.details}."

    def parts(self) -> tuple[str, str, str]:
        """The citation cut around the title (in the document's language): before, title,
        after; ``"".join(parts()) == citation()``."""
        before, rest = self.citation().split(self.title, 1)
        return before, self.title, rest


SOURCES = (
    Source("bp-lecture", "the BP lecture", "于泓 (Yu Hong)",
           "Python编程与人工智能实践 — 算法篇：神经网络与BP算法",
           "Python programming and AI practice — algorithms: neural networks and the BP "
           "algorithm", "鲁东大学 信息与电气工程学院 (Ludong University, School of Information "
           "and Electrical Engineering), lecture slides, 2021.4.4"),
    Source("basics-lecture", "the NumPy basics lecture", "胡俊峰 (Hu Junfeng)",
           "神经网络基础-numpy实现 C16", "Neural network basics, a NumPy implementation, C16",
           "信息科学与技术学院 (School of Information Science and Technology), lecture slides"),
    Source("framework-notes", "the three-framework notes", "", "BP 神经网络",
           "BP neural network", "notes with NumPy, TensorFlow and PyTorch code"),
    Source("numpy-blog", "the NumPy blog", "zj", "神经网络实现-numpy",
           "Neural network implementation in NumPy", "blog post, 2019-05-17"),
    Source("fashion-report", "the Fashion-MNIST report", "李丰克 (Li Fengke)",
           "人工神经网络模型与算法 — Chapter 1 基于numpy手工实现多层感知机模型",
           "Artificial neural network models and algorithms — Chapter 1: a hand-written "
           "multilayer perceptron in NumPy", "course report, 2025-3-11"),
)

BY_KEY = {source.key: source for source in SOURCES}
