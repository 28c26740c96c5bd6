"""Every static view, made from data: HTML for results and runs (``attention``, ``attribution``,
``run``, ``summary``), SVG charts (``svgchart``), PNG heatmaps (``heatmap``), bertviz's views
(``bertviz``), the terminal progress (``console``), the self-contained report (``report``) and
the display hook that adds the live widget in a kernel (``display``). Each escapes what it shows.
"""
