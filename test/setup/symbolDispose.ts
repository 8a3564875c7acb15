/**
 * Jest runs a test file in a vm context of its own, whose Symbol lacks Symbol.dispose and
 * Symbol.asyncDispose: Node 20 adds them to its main realm only (as the registered symbols
 * nodejs.dispose and nodejs.asyncDispose). playwright-core, loaded into that context, then keys
 * its `[Symbol.dispose]()` methods "undefined" while its `using` statements look for the
 * registered symbol, so every handle it disposes that way fails with "Object not disposable";
 * it disposes one on each click into a frame that runs in another process, such as a sandboxed
 * iframe. Imported before playwright-core.
 */
for (const name of ['dispose', 'asyncDispose'] as const) {
	if (!Symbol[name]) Object.defineProperty(Symbol, name, { value: Symbol.for(`nodejs.${name}`) });
}
