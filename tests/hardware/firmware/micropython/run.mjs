// Runs a Python script on real MicroPython (the webassembly port, under Node) with the reader
// bridge firmware's files importable: node run.mjs FIRMWARE_DIR SCRIPT. Exit 1 on an exception.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readFileSync, readdirSync } from "node:fs";

const [dir, script] = process.argv.slice(2);
const mp = await loadMicroPython({ stdout: (line) => process.stdout.write(line + "\n") });
mp.FS.mkdir("/fw");
for (const name of readdirSync(dir)) {
  if (name.endsWith(".py")) mp.FS.writeFile("/fw/" + name, readFileSync(`${dir}/${name}`));
}
try {
  mp.runPython("import sys\nsys.path.append('/fw')\n" + readFileSync(script, "utf8"));
} catch (error) {
  process.stdout.write(`MICROPYTHON ERROR: ${error}\n`);
  process.exit(1);
}
