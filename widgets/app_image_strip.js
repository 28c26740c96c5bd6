// labkit App's image strip: a row of thumbnails (PNG bytes, one buffer each) with captions; a
// click selects one (`selected`: its place in the row, -1 for none). The images become data:
// URIs here, so nothing is fetched; captions go through textContent only.

function pngUri(b) {
  const bytes = bytesOf(b);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(s)}`;
}

function render({ model, el }) {
  const root = h("div", "labkit-image-strip");
  el.appendChild(root);

  function draw() {
    const thumbs = model.get("thumbs") || [];
    const captions = model.get("captions") || [];
    const selected = model.get("selected");
    root.replaceChildren();
    thumbs.forEach((b, i) => {
      const item = h("button", "labkit-image-strip-item");
      item.type = "button";
      item.title = captions[i] || "";
      item.dataset.index = String(i);
      if (i === selected) item.classList.add("labkit-image-strip-selected");
      const img = h("img");
      img.src = pngUri(b);
      img.alt = captions[i] || "";
      item.append(img, h("span", "labkit-image-strip-caption", captions[i] || ""));
      item.addEventListener("click", () => {
        model.set("selected", i);
        model.save_changes();
      });
      root.appendChild(item);
    });
  }
  const unsubscribe = subscribe(
    model,
    ["change:thumbs", "change:captions", "change:selected"],
    draw,
  );
  draw();
  return unsubscribe;
}

export default { render };
