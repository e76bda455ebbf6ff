// Refuses to go on under a Node.js older than the service needs, with a message that says what to do.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 9)) {
  console.error(
    `This service needs Node.js 24.9 or newer; this is ${process.version}. ` +
      'Install Node 24 LTS (e.g. "nvm install" reads .nvmrc, or "npx -y node@24 --version" fetches it) and try again.',
  );
  process.exit(1);
}
