// "Show more" on the todo page.
//
// How long the page's lists are is the page's state: the inputs
// `#live > input.shown`, outside the lists section that every re-fetch
// replaces. The link raises its list's length there, gives up the re-fetch
// in flight (it asked for the shorter lists) and asks `#live` for the lists
// again. Every re-fetch from then on, queued or not, reads the longer
// length, so no click is lost to a re-fetch that was on its way.
//
// Without JavaScript, before htmx has loaded, or when the visitor opens the
// link elsewhere (a modifier key, another button), the link is a link: the
// page showing the longer lists.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-lengthens]");
  const live = document.getElementById("live");
  if (!link || !live || !window.htmx) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const name = link.dataset.lengthens;
  const input = live.querySelector(`:scope > input.shown[name="${name}"]`);
  const length = Number(new URL(link.href).searchParams.get(name));
  if (!input || !Number.isInteger(length)) return;
  event.preventDefault();
  // A link from lists older than the last click never shortens them.
  input.value = String(Math.max(Number(input.value), length));
  htmx.trigger(live, "htmx:abort");
  htmx.trigger(live, "lists-lengthened");
});
