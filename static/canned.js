/* The ticket page's 选用常用答复: with a script, the chosen canned reply goes into the reply
   box without reloading the page (what the reviewer typed stays; the canned text is added
   after it). Without one, the form loads the page again with the text in the box. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.canned-pick");
    var box = document.getElementById("reply");
    var status = document.getElementById("canned-status");
    if (!form || !box || !status) { return; }
    form.addEventListener("submit", function (event) {
      var option = form.querySelector("select").selectedOptions[0];
      var text = option && option.getAttribute("data-body");
      if (text === null || text === undefined) { return; }  // let the server do it
      event.preventDefault();
      var typed = box.value.replace(/\s+$/, "");
      box.value = typed ? typed + "\n" + text : text;
      status.textContent = typed ? "已将常用答复添加到答复框已有内容之后，请修改后提交。"
                                 : "已将常用答复填入答复框，请按具体问题修改后提交。";
      box.focus();
    });
  });
})();
