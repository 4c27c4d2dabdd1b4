host "web2" {
  address = "web2.example.internal"
  winrm {
    https    = true
    ca_cert  = "winrm_ca_cert_not_pem.hcl"
    user     = "deploy"
    password = var.pw
  }
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 5:16 Invalid CA certificate
