// Explanation view: token chips coloured by importance (or by [CLS] attention) and an attention heatmap.
// window.renderExplanation(container, data), where data is mlcore.explain.Explanation.to_dict() as JSON.
// Token text is model input, so it only ever reaches the page through textContent, title or canvas fillText.
(function () {
  "use strict";

  var MAX_TINT = 0.75; // strongest chip tint, so dark text stays readable on it
  var LABEL_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  var MAX_LABEL_PX = 110; // longer axis labels are cut with an ellipsis

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isSpecial(token) { return /^\[[A-Z]+\]$/.test(token) || /^<\/?[a-z]+>$/.test(token); }

  function isContinuation(token) { return token.length > 2 && token.slice(0, 2) === "##"; }

  function signed(v) { return (v > 0 ? "+" : "") + v.toFixed(3); }

  function cssVar(node, name, fallback) {
    var value = getComputedStyle(node).getPropertyValue(name).trim();
    return value || fallback;
  }

  // ---------------------------------------------------------------- summary

  function renderSummary(data) {
    var box = el("div", "xp-summary");
    var head = el("div", "xp-prediction");
    head.appendChild(el("span", "badge plain badge-promoted", data.label));
    head.appendChild(el("span", "xp-probability", (data.probability * 100).toFixed(1) + "%"));
    if (data.truncated) {
      head.appendChild(el("span", "badge plain badge-cancelled", "truncated: only the tokens below were read"));
    }
    box.appendChild(head);

    var bars = el("div", "xp-probabilities");
    Object.keys(data.probabilities).forEach(function (name) {
      var p = data.probabilities[name];
      var row = el("div", "xp-prob-row");
      row.appendChild(el("span", "xp-prob-name", name));
      var track = el("span", "xp-prob-track");
      var fill = el("span", "xp-prob-fill" + (name === data.label ? " xp-best" : ""));
      fill.style.width = (p * 100).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "xp-prob-value", (p * 100).toFixed(1) + "%"));
      bars.appendChild(row);
    });
    box.appendChild(bars);
    return box;
  }

  // ---------------------------------------------------------------- token chips

  function renderTokens(data) {
    var box = el("div", "xp-tokens-card");
    var controls = el("div", "xp-controls");
    controls.appendChild(el("span", "muted", "Colour by"));
    var name = "xp-mode-" + Math.random().toString(36).slice(2); // one radio group per rendered explanation
    var modes = [
      ["importance", "importance (gradient × input)"],
      ["attention", "attention from " + (data.tokens[0] || "first token")],
    ];
    var radios = modes.map(function (mode, i) {
      var label = el("label", "xp-mode");
      var input = el("input");
      input.type = "radio";
      input.name = name;
      input.value = mode[0];
      input.checked = i === 0;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + mode[1]));
      controls.appendChild(label);
      return input;
    });
    box.appendChild(controls);

    var line = el("div", "xp-tokens");
    var chips = data.tokens.map(function (token, i) {
      var continuation = isContinuation(token);
      var chip = el("span", "xp-token", continuation ? token.slice(2) : token);
      if (continuation && i > 0) chip.classList.add("xp-cont");
      if (i + 1 < data.tokens.length && isContinuation(data.tokens[i + 1])) chip.classList.add("xp-has-cont");
      if (isSpecial(token)) chip.classList.add("xp-special");
      line.appendChild(chip);
      return chip;
    });
    box.appendChild(line);

    var legend = el("div", "xp-legend muted");
    box.appendChild(legend);

    var maxAttention = Math.max.apply(null, data.cls_attention.concat([1e-12]));

    function paint(mode) {
      chips.forEach(function (chip, i) {
        var token = data.tokens[i];
        chip.classList.remove("xp-pos", "xp-neg", "xp-att");
        if (mode === "importance") {
          var v = data.importance[i];
          chip.classList.add(v < 0 ? "xp-neg" : "xp-pos");
          chip.style.setProperty("--xp-w", String(Math.min(1, Math.abs(v)) * MAX_TINT));
          chip.title = token + ": " + signed(v);
        } else {
          var a = data.cls_attention[i];
          chip.classList.add("xp-att");
          // Scaled to the row's largest weight: the raw weights of a long text are all small.
          chip.style.setProperty("--xp-w", String((a / maxAttention) * MAX_TINT));
          chip.title = token + ": " + (a * 100).toFixed(1) + "% of " + data.tokens[0] + "'s attention";
        }
      });
      legend.textContent = mode === "importance"
        ? "Green pushes towards “" + data.label + "”, red away from it; stronger colour, larger effect " +
          "(scaled so the strongest token is ±1). Hover a token for its value."
        : "Last layer's attention from " + data.tokens[0] + " (the token the classifier reads), averaged over " +
          "heads; darker is more. Attention shows where the model looked, not why it decided.";
    }

    radios.forEach(function (input) {
      input.addEventListener("change", function () { if (input.checked) paint(input.value); });
    });
    paint("importance");
    return box;
  }

  // ---------------------------------------------------------------- attention heatmap

  function renderHeatmap(data, container) {
    var tokens = data.tokens;
    var matrix = data.attention;
    var n = tokens.length;
    var cell = n <= 24 ? 20 : n <= 48 ? 14 : n <= 80 ? 11 : 9; // px; 128 tokens still fit ~1150 px
    var fontPx = Math.max(8, Math.min(12, cell - 2));
    var font = fontPx + "px " + LABEL_FONT;

    var box = el("div", "xp-heatmap-card");
    box.appendChild(el("div", "xp-legend muted",
      "Last layer's attention, averaged over heads: row = from, column = to. Colour is scaled to the largest " +
      "weight. Hover a cell for its value."));
    var scroll = el("div", "xp-heatmap-scroll");
    var canvas = el("canvas", "xp-heatmap");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Attention heatmap over " + n + " tokens");
    scroll.appendChild(canvas);
    box.appendChild(scroll);
    var tip = el("div", "xp-tip");
    tip.hidden = true;
    box.appendChild(tip);

    var ctx = canvas.getContext("2d");
    ctx.font = font;
    function fit(text) {
      if (ctx.measureText(text).width <= MAX_LABEL_PX) return text;
      while (text.length > 1 && ctx.measureText(text + "…").width > MAX_LABEL_PX) text = text.slice(0, -1);
      return text + "…";
    }
    var labels = tokens.map(fit);
    var labelPx = Math.ceil(Math.max.apply(null, labels.map(function (t) { return ctx.measureText(t).width; })));
    var left = labelPx + 8;
    var top = labelPx + 8; // x labels are drawn vertically, so they need as much room as the widest label
    var width = left + n * cell + 1;
    var height = top + n * cell + 1;

    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";

    var accent = cssVar(container, "--accent", "#4f46e5");
    var text = cssVar(container, "--text", "#1d2330");
    var border = cssVar(container, "--border", "#e3e6eb");
    var max = 1e-12;
    matrix.forEach(function (row) { row.forEach(function (w) { if (w > max) max = w; }); });

    function draw(hover) {
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(left, top, n * cell, n * cell);
      ctx.fillStyle = accent;
      for (var r = 0; r < n; r++) {
        for (var c = 0; c < n; c++) {
          ctx.globalAlpha = matrix[r][c] / max;
          ctx.fillRect(left + c * cell, top + r * cell, cell, cell);
        }
      }
      ctx.globalAlpha = 1;
      ctx.strokeStyle = border;
      ctx.strokeRect(left + 0.5, top + 0.5, n * cell, n * cell);

      ctx.font = font;
      ctx.textBaseline = "middle";
      for (var i = 0; i < n; i++) {
        var active = hover && (hover.row === i || hover.col === i);
        ctx.fillStyle = active ? accent : text;
        ctx.textAlign = "right";
        ctx.fillText(labels[i], left - 4, top + i * cell + cell / 2);
        ctx.save();
        ctx.translate(left + i * cell + cell / 2, top - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(labels[i], 0, 0);
        ctx.restore();
      }
      if (hover) {
        ctx.strokeStyle = text;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(left + hover.col * cell, top + hover.row * cell, cell, cell);
        ctx.lineWidth = 1;
      }
    }

    function cellAt(event) {
      var rect = canvas.getBoundingClientRect();
      var col = Math.floor((event.clientX - rect.left - left) / cell);
      var row = Math.floor((event.clientY - rect.top - top) / cell);
      return row >= 0 && row < n && col >= 0 && col < n ? { row: row, col: col } : null;
    }

    var current = null;
    canvas.addEventListener("mousemove", function (event) {
      var hit = cellAt(event);
      if (hit) {
        tip.textContent = tokens[hit.row] + " → " + tokens[hit.col] + ": " + matrix[hit.row][hit.col].toFixed(4);
        tip.style.left = event.clientX + 12 + "px";
        tip.style.top = event.clientY + 12 + "px";
        tip.hidden = false;
      } else {
        tip.hidden = true;
      }
      if ((hit && current && hit.row === current.row && hit.col === current.col) || hit === current) return;
      current = hit;
      draw(hit);
    });
    canvas.addEventListener("mouseleave", function () {
      tip.hidden = true;
      current = null;
      draw(null);
    });

    draw(null);
    return box;
  }

  // ---------------------------------------------------------------- entry point

  function renderExplanation(container, data) {
    container.textContent = "";
    container.classList.add("xp");
    if (!data || !data.tokens || !data.tokens.length) {
      container.appendChild(el("p", "muted", "Nothing to explain."));
      return;
    }
    container.appendChild(renderSummary(data));
    container.appendChild(el("h3", "xp-title", "Tokens"));
    container.appendChild(renderTokens(data));
    container.appendChild(el("h3", "xp-title", "Attention"));
    container.appendChild(renderHeatmap(data, container));
  }

  window.renderExplanation = renderExplanation;
})();
