// Static export: `next build` writes plain files to out/, which `x86lab web build` copies
// beside the os/ assets. No server code: the page talks only to static files (and, later,
// a Wisp relay).
const nextConfig = {
  output: "export",
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
};

export default nextConfig;
