// Checkout: Stripe.js Elements collect the card and make a PaymentMethod in the browser; the
// form sends only its id. Also: 3-D Secure on the payment page, and the PayPal return's
// auto-submitting form. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";

  async function paymentMethodId(stripe, card) {
    const made = await stripe.createPaymentMethod({ type: "card", card: card });
    if (made) {
      return made.error ? { error: made.error } : { id: made.paymentMethod.id };
    }
    // localstripe's Stripe.js mock has no createPaymentMethod (it returns nothing); its card
    // token holds a card object whose id Stripe accepts wherever a PaymentMethod id goes.
    const token = await stripe.createToken(card);
    return token.error ? { error: token.error } : { id: token.token.card.id };
  }

  function setUpCheckout(form) {
    const stripe = window.Stripe(form.dataset.stripeKey);
    const card = stripe.elements().create("card");
    card.mount("#card-element");
    const errors = document.getElementById("card-errors");
    form.addEventListener("submit", async function (event) {
      if (event.submitter && event.submitter.value === "paypal") return;
      event.preventDefault();
      errors.textContent = "";
      const found = await paymentMethodId(stripe, card);
      if (found.error) {
        errors.textContent = found.error.message || "Check the card details.";
        return;
      }
      form.elements.payment_method.value = found.id;
      form.submit();
    });
  }

  function setUpThreeDSecure(box) {
    const stripe = window.Stripe(box.dataset.stripeKey);
    const done = document.getElementById("three-d-secure-done");
    document.getElementById("three-d-secure-start").addEventListener("click", async function () {
      await stripe.confirmCardPayment(box.dataset.clientSecret);
      done.submit(); // the server asks Stripe how it ended
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("checkout-form");
    if (form && form.dataset.stripeKey && window.Stripe) setUpCheckout(form);
    const box = document.getElementById("three-d-secure");
    if (box && window.Stripe) setUpThreeDSecure(box);
    const auto = document.querySelector("form[data-autosubmit]");
    if (auto) auto.submit();
  });
})();
