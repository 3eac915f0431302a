// The graph page: draws the relations listed on it. A click on a relation opens its memory.
(function () {
  const box = document.getElementById("graph");
  if (!box || typeof cytoscape === "undefined") return;
  const data = JSON.parse(box.dataset.graph);
  const style = getComputedStyle(document.documentElement);
  const color = (name) => style.getPropertyValue(name).trim();
  const graph = cytoscape({
    container: box,
    elements: data,
    wheelSensitivity: 0.3,
    maxZoom: 1.6,
    minZoom: 0.1,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 11, color: color("--fg"),
        "background-color": color("--accent"), width: "mapData(degree, 1, 20, 14, 40)",
        height: "mapData(degree, 1, 20, 14, 40)", "text-valign": "bottom", "text-margin-y": 3 } },
      { selector: "edge", style: { label: "data(label)", "font-size": 9, color: color("--muted"),
        width: 1.5, "line-color": color("--muted"), "target-arrow-color": color("--muted"),
        "target-arrow-shape": "triangle", "curve-style": "bezier", "text-rotation": "autorotate" } },
      { selector: "edge[?ended]", style: { "line-style": "dashed", opacity: 0.6 } },
    ],
    // Concentric by degree: linear time, so hundreds of entities draw at once.
    layout: { name: "concentric", concentric: (n) => n.data("degree"), levelWidth: () => 2,
              animate: false, minNodeSpacing: 12, padding: 30 },
  });
  graph.on("tap", "edge", (event) => {
    const memory = event.target.data("memory");
    if (memory) window.location.href = "/dashboard/memories/" + memory;
  });
  box.dataset.ready = "true";
})();
