"""The report page's CSS, JavaScript and shared SVG patterns, inline.

Inline so that the page opens from disk with no network; kept apart from the code that writes
the page so that the one is read as a style sheet and the other as Python.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CSS", "DEFS", "JS"]

CSS: Final = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2430;--muted:#667085;--line:#e3e7ee;--grid:#eef1f5;
--pending:#98a2b3;--submitted:#3b82f6;--partially_filled:#8b5cf6;--filled:#16a34a;
--cancelled:#f59e0b;--cancel-ink:#b45309;--rejected:#dc2626;--halo:rgba(255,255,255,.92)}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f26;--ink:#e6e9ef;
--muted:#98a2b3;--line:#2c333d;--grid:#232a33;--cancel-ink:#fbbf24;--halo:rgba(26,31,38,.92)}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
header h1{font-size:24px;margin:0 0 2px}
header p{margin:0;color:var(--muted)}
nav{margin:10px 0 0;display:flex;gap:14px;flex-wrap:wrap}
nav a{color:var(--submitted);text-decoration:none;font-weight:600}
h2{font-size:18px;margin:34px 0 10px}
h3{font-size:14px;margin:0 0 8px}
code,.num,.tr{font-family:ui-monospace,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono",monospace}
.muted{color:var(--muted)}
.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
.empty{color:var(--muted);font-style:italic;padding:24px;text-align:center}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;
margin-top:18px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px;
display:flex;flex-direction:column;gap:4px}
.kname{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
font-weight:600}
.kval{font-size:28px;font-weight:700;line-height:1.1}
.ksub{font-size:12px;color:var(--muted);flex:1}
.kbar,.gbar,.sbar{display:block;border-radius:4px;overflow:hidden}
.meter{display:block;margin-top:4px}
.meter-bg{fill:var(--grid)}
.s-pending{fill:var(--pending);background:var(--pending)}
.s-submitted{fill:var(--submitted);background:var(--submitted)}
.s-partially_filled{fill:var(--partially_filled);background:var(--partially_filled)}
.s-filled{fill:var(--filled);background:var(--filled)}
.s-cancelled{fill:var(--cancelled);background:var(--cancelled)}
.s-rejected{fill:var(--rejected);background:var(--rejected)}
.c-latency{fill:var(--cancelled)}
.c-fill{fill:var(--filled)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:var(--muted);
margin:6px 0 10px;align-items:center}
.legend span{display:inline-flex;align-items:center;gap:5px}
.legend.small{margin:6px 0 0}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px}
.sw.hatch{background:repeating-linear-gradient(135deg,var(--cancelled) 0 2px,transparent 2px 5px);
outline:1px solid var(--cancel-ink)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:12px}
.chart{max-width:100%;height:auto;display:block;margin:0 auto}
.chart .grid,.tl-svg .grid{stroke:var(--grid);stroke-width:1}
.chart .axis{stroke:var(--muted);stroke-width:1}
.chart text{fill:var(--muted);font-size:11px}
.chart .count{fill:var(--ink);font-size:11px;font-weight:600}
.chart .axis-title{font-size:12px}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
.strategies th,.strategies td{padding:8px 10px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:middle}
.strategies thead th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
.strategies th[scope=row]{font-weight:600;overflow-wrap:break-word;max-width:220px}
.strategies .num{text-align:right;white-space:nowrap;width:1%}
.strategies td.num .meter{width:90px;margin-left:auto}
.strategies .barcell{min-width:140px}
.tiny{font-size:11px;color:var(--muted)}
.reasons td{padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
.reasons .reason{word-break:break-word;width:100%}
.filter{margin:4px 0 10px}
.filter input{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:8px;
width:min(420px,100%);background:var(--card);color:var(--ink)}
.tl-group{background:var(--card);border:1px solid var(--line);border-radius:10px;
margin:0 0 12px;overflow:hidden}
.tl-group summary{cursor:pointer;padding:10px 14px;display:grid;
grid-template-columns:auto 1fr minmax(80px,200px);gap:12px;align-items:center}
.tl-group summary .muted{font-size:12px}
.gname{font-weight:700;overflow-wrap:break-word}
.tl-group summary::-webkit-details-marker{display:none}
.gname::before{content:"\\25BE\\00A0";color:var(--muted)}
details:not([open]) .gname::before{content:"\\25B8\\00A0"}
.tl-scroll{max-height:70vh;overflow-y:auto;border-top:1px solid var(--line)}
.tl-row{display:grid;grid-template-columns:210px minmax(0,1fr) 190px;gap:0 14px;
align-items:center;padding:2px 14px;border-bottom:1px solid var(--grid)}
.tl-row:hover{background:var(--grid)}
.tl-axis{position:sticky;top:0;z-index:2;background:var(--card);border-bottom:1px solid
var(--line);font-size:12px}
.tl-axis:hover{background:var(--card)}
.tl-axis text{fill:var(--muted);font-size:11px}
.lab{font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:1.25}
.lab .sub{font-size:11px;color:var(--muted)}
.side{font-size:11px;font-weight:700;text-transform:uppercase}
.side.buy{color:var(--filled)}
.side.sell{color:var(--rejected)}
.out{font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.pill{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;font-size:11px;
font-weight:600;line-height:17px}
.pill.s-cancelled{color:#3b2600}
.tl-svg{display:block;overflow:visible}
.tl-svg .track{stroke:var(--grid);stroke-width:2}
.tl-svg .cancel-wait{fill:url(#hatch);stroke:var(--cancel-ink);stroke-width:.8}
.tl-svg .bracket{stroke:var(--cancel-ink);stroke-width:1.4}
.tl-svg .latency{fill:var(--cancel-ink);font-size:10.5px;font-weight:700}
.m-fill circle,.m-fill-ic{fill:var(--filled);fill-opacity:.8;stroke:#fff;stroke-width:1.2}
.m-late-fill circle{fill:var(--cancelled);stroke:var(--filled);stroke-width:2}
.m-ask path,.m-ask-ic{fill:var(--cancel-ink)}
.m-ask line{stroke:var(--cancel-ink);stroke-width:1.2;stroke-dasharray:2 2}
.m-cancel line{stroke:var(--cancel-ink);stroke-width:2}
.m-cancel-rejected path{fill:var(--rejected)}
.m-correct path{fill:var(--card);stroke:var(--ink);stroke-width:1.3}
.end rect,.end path,.end-ic{stroke:var(--card);stroke-width:1}
.end.s-rejected path,.end-x{stroke:var(--rejected);stroke-width:2.6;fill:none}
.more path{stroke:var(--muted);stroke-width:1.6;fill:none}
.diagram{overflow-x:auto}
.lifecycle{display:block;max-width:100%;height:auto;margin:0 auto}
.lifecycle .box{fill:var(--card);stroke:var(--ink);stroke-width:1.4}
.lifecycle .state .chip{stroke:none}
.lifecycle .sname{font-size:14px;font-weight:700;fill:var(--ink)}
.lifecycle .divider{stroke:var(--line)}
.lifecycle .edge{fill:none;stroke:var(--muted);stroke-width:1.5}
.lifecycle .arrowhead{fill:var(--muted)}
.lifecycle .start{fill:var(--ink)}
.lifecycle .halo{fill:var(--halo)}
.lifecycle .tr{font-size:11px;fill:var(--ink)}
.lifecycle .tr .trig{font-weight:700}
.lifecycle .tr .guard{fill:var(--muted)}
.lifecycle .tr.internal .trig{font-weight:400}
.lifecycle .loop{fill:none;stroke:var(--ink);stroke-width:1.3}
.lifecycle .loop.internal{stroke:var(--muted);stroke-dasharray:2 1.5}
.lifecycle .loophead{fill:var(--muted)}
.lifecycle .state rect.chip{fill:inherit}
[hidden]{display:none!important}
@media (max-width:860px){main{padding:14px 12px 40px}
.tl-row{grid-template-columns:168px minmax(0,1fr) 96px;gap:0 8px;padding:2px 8px}
.lab{font-size:12px}
.out .detail{display:none}
.tl-group summary{grid-template-columns:1fr;gap:4px}
.kval{font-size:24px}
.strategies th,.strategies td{padding:6px 5px}
.strategies thead th{white-space:normal}
.strategies td.num .meter{width:56px}
.strategies .barcell{min-width:70px}
.strategies th[scope=row]{overflow-wrap:break-word}
.out{white-space:normal;line-height:1.2}
.out .num{display:block;font-size:11px}
.diagram svg{min-width:700px}}
"""
JS: Final = """
(function(){
var box=document.getElementById('tl-filter');if(!box){return;}
var rows=document.querySelectorAll('.tl-row[data-q]');var count=document.getElementById('tl-count');
function run(){var q=box.value.trim().toLowerCase();var shown=0;
for(var i=0;i<rows.length;i++){var hit=!q||rows[i].getAttribute('data-q').indexOf(q)>=0;
rows[i].hidden=!hit;if(hit){shown++;}}
count.textContent=q?(shown+' of '+rows.length+' orders'):'';
if(q){var groups=document.querySelectorAll('details.tl-group');
for(var j=0;j<groups.length;j++){if(groups[j].querySelector('.tl-row[data-q]:not([hidden])')){
groups[j].open=true;}}}}
box.addEventListener('input',run);
})();
"""
# Patterns the timeline rows refer to (a page holds them once).
DEFS: Final = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="5" height="5" fill="#fef3c7"/>'
    '<rect width="2" height="5" fill="#f59e0b"/></pattern></defs></svg>'
)
