// Package pages holds the pages of the install wizard: welcome, precheck,
// registration form, routes, review, apply, connectivity and done. Each
// page is a small model the root model (package tui) switches between: it
// takes key presses and the data the root hands it, renders its body, and
// reports the operator's decision as a message (StartMsg,
// PrecheckDecisionMsg, RegisterDoneMsg, RoutesDoneMsg, ReviewDoneMsg,
// FinishMsg).
//
// Pages must not do I/O or any install step: they show what the install
// Engine emitted and collect answers; validation uses the provision
// package's validators so the wizard and --yes accept the same input.
package pages
