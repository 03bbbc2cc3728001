// Starts Swagger UI from the same-origin bundle (no inline script, so the CSP stays strict).
window.addEventListener("DOMContentLoaded", function () {
  const node = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: node.dataset.openapiUrl, dom_id: "#swagger-ui" });
});
