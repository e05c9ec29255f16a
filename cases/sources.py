"""The five documents the cases come from, cited so that a reader can find them.

Each record says only what its document says about itself: its title (with an
English rendering of a Chinese one), its author or site, its year, and a URL
where the document gives one. Where it gives none, ``url`` is empty and
``finding`` says how to look for it. ``seed`` is the document's number in the
project's seed collection ("seed 000" in docs/cases.md and the case docstrings).

>>> SEED_004.short()
'seed 004 (Stack Overflow question, undated)'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One source document: ``Source.citation()`` is one line a reader can search for."""
    seed: str                 # "000": its number in the seed collection
    title: str                # as the document gives it
    english: str = ""         # an English rendering of a Chinese title ("" if the title is English)
    kind: str = ""            # "blog post", "course report", "Stack Overflow question"
    author: str = ""          # as the document names them ("" if it does not)
    site: str = ""            # where it was published, and how we know ("" if unknown)
    year: str = ""            # "" when the document gives no date
    links: tuple = ()         # (what, URL) pairs, only URLs the document itself gives
    finding: str = ""         # what the document gives of its whereabouts, and what to search

    @property
    def url(self) -> str:
        """The first URL the document gives, or ""."""
        return self.links[0][1] if self.links else ""

    def facts(self) -> str:
        """Title, English title, kind, author, site, year:
        ``"记MLP的一次回归失败" ("Notes on ..."), blog post by 张春成 (Zhang Chuncheng), 2023``"""
        english = f' ("{self.english}")' if self.english else ""
        by = f" by {self.author}" if self.author else ""
        on = f" on {self.site}" if self.site else ""
        return f'"{self.title}"{english}, {self.kind}{by}{on}, {self.year or "undated"}'

    def where(self, link=lambda url: url) -> str:
        """Each URL (drawn by ``link(url)``) with what it holds, then what to search for."""
        urls = "; ".join(f"{what}: {link(url)}" for what, url in self.links)
        return ". ".join(part for part in (urls, self.finding) if part) + "."

    def citation(self) -> str:
        """Plain text: title, kind, author, site, year and where to find it."""
        return f"{self.facts()}. {self.where()}"

    def markdown(self) -> str:
        """The citation with its URLs as markdown links (the report and docs/cases.md)."""
        return f"{self.facts()}. {self.where(markdown_link)}"

    def short(self) -> str:
        """``seed 000 (blog post, 2023)`` for narrow table cells."""
        return f"seed {self.seed} ({self.kind}, {self.year or 'undated'})"


def markdown_link(url: str) -> str:
    return f"[{url}]({url})"


NO_URL = "The document gives no URL"

SEED_000 = Source(
    seed="000", title="记MLP的一次回归失败", english="Notes on a failed MLP regression",
    kind="blog post", author="张春成 (Zhang Chuncheng)", year="2023",
    links=(("The post names its code", "https://github.com/listenzcc/MLP-notebook"),
           ("its interactive figures", "https://listenzcc.github.io/MLP-notebook/")),
    finding="It gives no URL of its own (dated 2023/01/01)")

SEED_001 = Source(
    seed="001",
    title="Pytorch全连接网络:激活函数对一维拟合问题的影响探讨;网络加深后带来的loss不降问题",
    english="PyTorch fully connected networks: how the activation function affects a 1-D "
    "fit; the loss that stops falling when the network gets deeper",
    kind="blog post", author="无知的吱屋", site="CSDN (going by the page's footer)",
    finding=f"{NO_URL} or date; search CSDN for the title")

SEED_002 = Source(
    seed="002",
    title="自己写的numpy BP神经网络(拟合[0,2]上的函数 sin(2 pi x)/4+0.5 )第一次跑通…",
    english="My own numpy backprop network (fitting sin(2 pi x)/4+0.5 on [0, 2]) ran for "
    "the first time ... (no title: the post's opening words)",
    kind="post", year="2022",
    finding=f"{NO_URL}, title or author (dated 2022/9/21; its update answers commenters "
    "@Horizony and @镇戎); search for its opening words")

SEED_003 = Source(
    seed="003", title="人工神经网络 MLP NUMPY", english="Artificial neural networks: an MLP "
    "in numpy", kind="course report", author="赵晨阳 (Zhao Chenyang), Department of Computer "
    "Science, Tsinghua University", year="2022",
    finding=f"{NO_URL} (dated 4 October 2022)")

SEED_004 = Source(
    seed="004", title="Why does cost function for MLP flatten?",
    kind="Stack Overflow question",
    finding="The project's copy is a Chinese translation (\"为什么 MLP 的成本函数变平?\") of "
    "the question and its answer, with no URL, author or date; search Stack Overflow for "
    "the title")

SOURCES = (SEED_000, SEED_001, SEED_002, SEED_003, SEED_004)
