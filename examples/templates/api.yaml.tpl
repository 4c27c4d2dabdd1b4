# Rendered by gsd from examples/templates/api.yaml.tpl
listen: 127.0.0.1:${port}
cache:
  address: ${cache_addr}
  password: ${password}
