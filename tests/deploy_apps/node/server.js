const http = require("http");
const os = require("os");
const port = parseInt(process.env.PORT, 10);
http.createServer((req, res) => {
  res.writeHead(200, {"Content-Type": "text/plain"});
  res.end(`hello from node ${process.version} on ${os.hostname()}\n`);
}).listen(port, "0.0.0.0", () => console.log(`listening on ${port}`));
