// A chart card's DOM: escaped text, the "?" help, the row of small controls.
export function escapeText(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// A "?" control that shows a few plain sentences about what a chart measures.
export function addHelp(card, id, title, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "help-toggle";
  button.textContent = "?";
  button.setAttribute("aria-label", `What is this? ${title}`);
  button.setAttribute("aria-expanded", "false");
  const help = document.createElement("p");
  help.className = "help-text";
  help.id = `help-${id}`;
  help.hidden = true;
  help.textContent = text;
  button.setAttribute("aria-controls", help.id);
  button.addEventListener("click", () => {
    help.hidden = !help.hidden;
    button.setAttribute("aria-expanded", String(!help.hidden));
  });
  tools(card).append(button);
  card.append(help);
}

// The row of small controls at the top of a chart card ("Show large", "?").
export function tools(card) {
  let row = card.querySelector(":scope > .card-tools");
  if (!row) {
    row = document.createElement("div");
    row.className = "card-tools";
    card.prepend(row);
  }
  return row;
}
